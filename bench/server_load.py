"""The REST server under load on loopback: requests/s and latency with micro-batching on (the serve default window)
and off (--micro-batch-ms 0).

For each mode `python -m distilora.cli serve RUN` runs as a subprocess bound to 127.0.0.1 on a free port; once /healthz
answers, N concurrent workers (one httpx.AsyncClient) post one short text per request to POST /v1/predict until the
fixed number of requests is done or the time cap is hit. Texts are SST-2 dev sentences when the shared data is there,
else a few built-in ones. Client and server share the machine's cores, so compare the modes with each other rather
than with a server on its own machine.

    python bench/server_load.py RUN                                # torch engine, 16 workers, 2000 requests a mode
    python bench/server_load.py RUN --backend onnx                 # needs `distilora export RUN --format onnx` first
    python bench/server_load.py RUN --workers 64 --requests 5000 --cap-s 120
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, print_table, write_results  # noqa: E402

HOST = "127.0.0.1"  # never anything else: this benchmark only talks to the server it starts
FALLBACK_TEXTS = ["a gripping , beautifully acted film", "the plot is thin and the jokes fall flat",
                  "not bad at all", "i would not watch it again", "one of the best of the year"]


def load_texts() -> tuple[list[str], str]:
    path = DATA / "sst2" / "dev.tsv"
    if not path.is_file():
        return FALLBACK_TEXTS, "built-in"
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["sentence"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)], "sst2 dev"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def server(run: Path, options: list[str], log: Path, startup_s: float,
           command: tuple[list[str], dict] | None = None) -> Iterator[str]:
    """`distilora serve RUN` on a free loopback port (or another server's command and environment, bound to 127.0.0.1
    on the port after its --port) until /healthz answers; stopped (SIGINT, then kill) on exit."""
    import httpx

    port = int(command[0][command[0].index("--port") + 1]) if command else free_port()
    url = f"http://{HOST}:{port}"
    argv, env = command or ([sys.executable, "-m", "distilora.cli", "serve", str(run), "--host", HOST,
                             "--port", str(port), *options], None)
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "timed out" if proc.returncode is None else f"exited {proc.returncode}"
                sys.exit(f"server did not come up ({why}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def load(url: str, texts: list[str], workers: int, total: int, cap_s: float, timeout_s: float) -> dict:
    """``workers`` concurrent loops posting one text each until ``total`` requests were sent or ``cap_s`` passed."""
    import httpx

    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    sent = 0

    async def worker(client: httpx.AsyncClient, deadline: float, limit: int) -> None:
        nonlocal sent
        while sent < limit and time.perf_counter() < deadline:
            text = texts[sent % len(texts)]
            sent += 1
            start = time.perf_counter()
            try:
                response = await client.post("/v1/predict", json={"text": text})
            except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the run
                errors[type(err).__name__] += 1
                continue
            latencies.append(1000 * (time.perf_counter() - start))
            statuses[response.status_code] += 1

    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout_s, trust_env=False) as client:
        await asyncio.gather(*(worker(client, time.perf_counter() + cap_s, 2 * workers) for _ in range(workers)))
        if errors or set(statuses) - {200}:
            sys.exit(f"warm-up failed: statuses {dict(statuses)}, exceptions {dict(errors)}")
        latencies.clear(), statuses.clear()
        sent = 0
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, start + cap_s, total) for _ in range(workers)))
        seconds = time.perf_counter() - start
    lat = np.asarray(latencies)
    return {"sent": sent, "ok": statuses[200], "non_200": sum(statuses.values()) - statuses[200],
            "exceptions": sum(errors.values()), "seconds": seconds, "requests_per_s": statuses[200] / seconds,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None, "capped": sent < total,
            "statuses": {str(k): v for k, v in statuses.items()}, "exception_types": dict(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished distilora run folder")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch")
    parser.add_argument("--workers", type=int, default=16, help="concurrent client connections")
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode (after a warm-up)")
    parser.add_argument("--cap-s", type=float, default=60, help="hard time cap per mode, seconds")
    parser.add_argument("--timeout-s", type=float, default=30, help="per-request client timeout, seconds")
    parser.add_argument("--threads", type=int, default=None, help="server CPU threads (serve --threads)")
    parser.add_argument("--startup-s", type=float, default=180, help="how long to wait for /healthz")
    args = parser.parse_args()
    if not (args.run / "run.json").is_file():
        print(f"skipped: {args.run} is not a finished run folder")
        sys.exit(0)
    if args.backend != "torch":
        from distilora.inference.classifier import ONNX_FILES
        from distilora.runfolder import RunFolder

        if not (RunFolder(args.run).onnx_dir / ONNX_FILES[args.backend]).is_file():
            sys.exit(f"error: {args.run} has no {ONNX_FILES[args.backend]}; run "
                     f"`distilora export {args.run} --format {args.backend}` first")
    import inspect

    from distilora.cli import serve

    default_ms = inspect.signature(serve).parameters["micro_batch_ms"].default
    texts, source = load_texts()
    common = ["--backend", args.backend, *(["--threads", str(args.threads)] if args.threads else [])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, window in (("micro-batch on", None), ("micro-batch off", 0.0)):
            options = common + ([] if window is None else ["--micro-batch-ms", str(window)])
            print(f"{mode}: starting the server ...", flush=True)
            with server(args.run, options, Path(tmp) / "server.log", args.startup_s) as url:
                result = asyncio.run(load(url, texts, args.workers, args.requests, args.cap_s, args.timeout_s))
            rows.append({"mode": mode, "window_ms": default_ms if window is None else window,
                         "backend": args.backend, "workers": args.workers, **result})
            print_table(rows[-1:], ["mode", "sent", "ok", "requests_per_s", "p50_ms", "p99_ms"])
    print()
    print_table(rows, ["mode", "window_ms", "backend", "workers", "sent", "ok", "non_200", "exceptions", "seconds",
                       "requests_per_s", "p50_ms", "p99_ms", "capped"])
    on, off = rows
    if off["requests_per_s"]:
        print(f"micro-batching: {on['requests_per_s'] / off['requests_per_s']:.2f}x the requests/s of no batching")
    failed = sum(r["non_200"] + r["exceptions"] for r in rows)
    if failed:
        print(f"WARNING: {failed} failed requests (target 0): " + "; ".join(
            f"{r['mode']}: statuses {r['statuses']}, exceptions {r['exception_types']}" for r in rows))
    path = write_results("server_load", {"run": str(args.run), "texts": source, "requests": args.requests,
                                         "cap_s": args.cap_s, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
