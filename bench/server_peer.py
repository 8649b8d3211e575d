"""distilora serve against the server a user would otherwise write (FastAPI + transformers.pipeline, bench/peer_server.py),
same model, same text, same machine, loaded by a compiled load generator (`hey`, Debian's package) on loopback.

Each server runs alone as a subprocess on 127.0.0.1; after a warm-up, `hey` keeps C connections busy for a fixed
time, each request one short text, for every C in --clients. Client and servers share the machine's cores: the
ratio between the servers is the figure to read, measured in one run.

    apt-get install hey                      # once
    python bench/server_peer.py RUN --backend onnx-int8 --clients 16 64 --seconds 20
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_results  # noqa: E402
from server_load import HOST, free_port, server  # noqa: E402

TEXT = "Oil prices rose on Tuesday after a pipeline outage in the North Sea cut supply, traders said."


def hey(url: str, clients: int, seconds: int, body: Path) -> dict:
    """One hey run: requests/s, p50 / p99 latency and every non-200 answer or error, parsed from its report."""
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "application/json",
                          "-D", str(body), f"{url}/v1/predict"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    quantile = {q: 1000 * float(v) for q, v in re.findall(r"\s(\d+)%+ in ([0-9.]+) secs", out)}
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    failures = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", failures, flags=re.M))
    return {"requests_per_s": rate, "p50_ms": quantile.get("50"), "p99_ms": quantile.get("99"),
            "ok": codes.get(200, 0), "non_200": sum(n for c, n in codes.items() if c != 200), "errors": errors}


def peer_command(model_dir: Path, port: int) -> tuple[list[str], dict]:
    env = {**os.environ, "PEER_MODEL": str(model_dir), "PYTHONPATH": str(Path(__file__).resolve().parent)}
    return [sys.executable, "-m", "uvicorn", "peer_server:app", "--host", HOST, "--port", str(port),
            "--log-level", "warning"], env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run folder with full (or merged) weights")
    parser.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="distilora serve --workers to try")
    parser.add_argument("--name", default="server_peer", help="results file name under bench/results")
    args = parser.parse_args()
    if shutil.which("hey") is None:
        sys.exit("error: hey not found; apt-get install hey")
    from distilora.runfolder import RunFolder

    folder = RunFolder(args.run)
    model_dir = folder.merged_dir if folder.merged_dir.is_dir() else folder.model_dir
    if not (model_dir / "config.json").is_file():
        sys.exit(f"error: {args.run} has no full weights for the peer; run `distilora export {args.run} --format merged`")
    sides = [(f"distilora serve {args.backend}, {w} worker{'s' if w > 1 else ''}", None,
              ["--backend", args.backend, "--workers", str(w)]) for w in args.workers]
    sides.append(("FastAPI + transformers.pipeline (torch)", "peer", []))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps({"text": TEXT}))
        for name, kind, options in sides:
            print(f"{name}: starting ...", flush=True)
            with server(args.run, options, Path(tmp) / "server.log", 240,
                        command=peer_command(model_dir, free_port()) if kind else None) as url:
                hey(url, 8, 3, body)  # warm-up
                for clients in args.clients:
                    rows.append({"server": name, "clients": clients, **hey(url, clients, args.seconds, body)})
                    print_table(rows[-1:], ["server", "clients", "requests_per_s", "p50_ms", "p99_ms", "ok", "non_200"])
    print()
    print_table(rows, ["server", "clients", "requests_per_s", "p50_ms", "p99_ms", "ok", "non_200", "errors"])
    if any(r["non_200"] or r["errors"] for r in rows):
        print("WARNING: some requests failed; a server's requests/s then counts failures too")
    peer = {r["clients"]: r["requests_per_s"] for r in rows if r["server"].startswith("FastAPI")}
    for row in rows:
        row["x_peer"] = round(row["requests_per_s"] / peer[row["clients"]], 2) if peer.get(row["clients"]) else None
    path = write_results(args.name, {"run": str(args.run), "text": TEXT, "seconds": args.seconds,
                                         "machine": machine(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
