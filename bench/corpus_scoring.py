"""Corpus scoring: single-process streamed `distilora predict --input` against `--ray local` with 1 and 2 actors, on
the same shards of real texts, same run, same engine, same machine; texts/s and peak memory of the whole process tree.

The corpus is AG News test descriptions (or SST-2 sentences) repeated to --rows rows with an id column, written as
--shards Parquet files (and one file with every row for the single process). Memory is the largest sum of resident
memory over the scoring process and all its children (Ray's raylet, workers and actors included), sampled every
0.2 s. The scaling to a cluster is a projection (texts/s per actor core x cores), not a measurement.

    python bench/corpus_scoring.py RUN --backend onnx-int8 --rows 100000 --shards 8
    python bench/corpus_scoring.py RUN --texts sst2 --rows 1000000 --ray-layouts 2x1 --small-rows 20000 \
        --name corpus_scoring_1m
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine, print_table, write_results  # noqa: E402


def corpus_texts(source: str) -> tuple[list[str], str]:
    """AG News test descriptions (about 45 tokens) or SST-2 training sentences (short: about 13 tokens)."""
    if source == "agnews":
        agnews = DATA / "agnews" / "test.csv"
        if not agnews.is_file():
            sys.exit(f"skipped: {agnews} is absent")
        return pd.read_csv(agnews, header=None, dtype=str, keep_default_na=False)[2].tolist(), "agnews test descriptions"
    sst2 = DATA / "sst2" / "train.tsv"
    if not sst2.is_file():
        sys.exit(f"skipped: {sst2} is absent")
    return pd.read_csv(sst2, sep="\t", quoting=csv.QUOTE_NONE, dtype=str)["sentence"].tolist(), "sst2 train sentences"


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def timed(argv: list[str]) -> dict:
    """Wall time and peak resident memory of a command and everything it starts."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.2)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.communicate()[0]
    sampler.join()
    if proc.returncode:
        sys.exit(f"failed: {' '.join(argv)}\n{out[-3000:]}")
    return {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--ray-rows", type=int, help="rows for the Ray runs (default: --rows; 0 = no Ray runs)")
    parser.add_argument("--small-rows", type=int, default=5_000, help="a smaller single-process run: memory must not grow")
    parser.add_argument("--texts", choices=("agnews", "sst2"), default="agnews")
    parser.add_argument("--ray-layouts", nargs="+", default=["1x2", "2x1"],
                        help="Ray runs as ACTORSxTHREADS; the last one's output is checked for every id")
    parser.add_argument("--name", default="corpus_scoring", help="results file name under bench/results")
    args = parser.parse_args()
    ray_rows = args.rows if args.ray_rows is None else args.ray_rows
    texts, source = corpus_texts(args.texts)
    cli = [sys.executable, "-m", "distilora.cli", "predict", str(args.run), "--backend", args.backend]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = pd.DataFrame({"doc_id": range(args.rows), "text": [texts[i % len(texts)] for i in range(args.rows)]})
        table.to_parquet(work / "all.parquet", row_group_size=8192)
        table.head(args.small_rows).to_parquet(work / "small.parquet", row_group_size=8192)
        (work / "shards").mkdir()
        shard_rows = max(1, -(-ray_rows // args.shards))
        for k, part in enumerate(range(0, ray_rows, shard_rows)):
            table.iloc[part:part + shard_rows].to_parquet(work / "shards" / f"part-{k:03d}.parquet")
        runs = [("single process, streamed", args.small_rows, [*cli, "--input", str(work / "small.parquet"),
                                                               "--output", str(work / "small-out.parquet")]),
                ("single process, streamed", args.rows, [*cli, "--input", str(work / "all.parquet"),
                                                         "--output", str(work / "all-out.parquet")])]
        layouts = [tuple(int(n) for n in layout.split("x")) for layout in args.ray_layouts]
        for actors, threads in layouts if ray_rows else ():
            out = work / f"ray-{actors}x{threads}"
            runs.append((f"Ray local, {actors} actor(s) x {threads} thread(s)", ray_rows,
                         [*cli, "--input", str(work / "shards" / "*.parquet"), "--output", str(out),
                          "--ray", "local", "--actors", str(actors), "--threads", str(threads)]))
        for name, n, argv in runs:
            print(f"{name}, {n:,} texts ...", flush=True)
            result = timed(argv)
            rows.append({"mode": name, "texts": n, **result, "texts_per_s": round(n / result["seconds"], 1)})
            print_table(rows[-1:], ["mode", "texts", "seconds", "texts_per_s", "peak_rss_mb"])
        single = pd.read_parquet(work / "all-out.parquet", columns=["doc_id"])["doc_id"]
        assert single.tolist() == list(range(args.rows)), "the streamed output lost or reordered rows"
        if ray_rows:
            scored = pd.read_parquet(out)  # the last layout's
            assert len(scored) == ray_rows and sorted(scored["doc_id"]) == list(range(ray_rows)), "ids lost"
        shutil.rmtree(work / "shards")
    print()
    print_table(rows, ["mode", "texts", "seconds", "texts_per_s", "peak_rss_mb"])
    best = max(rows, key=lambda r: r["texts_per_s"])
    per_core = best["texts_per_s"] / (psutil.cpu_count() or 1)
    projection = {"texts_per_s_per_core": round(per_core, 1), "cores_for_1m_per_minute": round(1e6 / 60 / per_core)}
    print(f"projection: {per_core:,.0f} texts/s per core -> {projection['cores_for_1m_per_minute']} cores score "
          f"1,000,000 such texts a minute (not measured)")
    path = write_results(args.name, {"run": str(args.run), "backend": args.backend, "texts": source,
                                            "machine": machine(), "rows": rows, "projection": projection})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
