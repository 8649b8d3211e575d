"""Corpus scoring on Ray: many input shards, a pool of actors that each hold the run's engine, one output shard per
input shard, and a resume that skips every shard already written.

The Ray Dataset is the list of shards still to score; `map_batches` with an actor pool hands them out, so each
actor loads the model once and then scores shard after shard, each with the same streaming reader and writer as
`distilora predict --input` (same columns kept, same pred_label / score_<label> columns, constant memory, an output
file that appears only when complete). A shard is Ray Data's natural unit for CSV and JSON lines too: one read task
per file. On a multi-machine cluster the inputs, the run folder and the output folder must be on a file system that
every node sees.
"""
from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from distilora.errors import ConfigError, DataError
from distilora.inference.classifier import fastest_backend
from distilora.inference.predict_file import OUTPUT_FORMATS
from distilora.runfolder import RunFolder

SHARD_FORMATS = tuple(suffix.lstrip(".") for suffix in OUTPUT_FORMATS)  # what the streaming writer writes


def input_shards(pattern: str) -> list[Path]:
    """The files a path or glob names, sorted; each becomes one output shard."""
    paths = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()), recursive=True) if Path(p).is_file())
    if not paths:
        raise DataError(f"--input: {pattern} matches no file (relative paths start at {Path.cwd()}); fix the path "
                        f"or the glob")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise DataError(f"--input: {stems[path.stem]} and {path} would both write the shard {path.stem}; "
                            f"give the shards distinct names")
        stems[path.stem] = path
    return paths


def output_shard(out_dir: Path, shard: Path, fmt: str) -> Path:
    return out_dir / f"{shard.stem}.{fmt}"


class ShardScorer:
    """A Ray actor: loads the run's engine once, then scores whole shards handed to it by path."""

    def __init__(self, run: str, backend: str, threads: int, batch_size: int, out_dir: str, fmt: str,
                 data_overrides: list[str]):
        from distilora.config import file_data_config
        from distilora.inference.classifier import Classifier

        self.classifier = Classifier.load(run, backend=backend, threads=threads)
        self.data = file_data_config(RunFolder(run).config_yaml, data_overrides)
        self.batch_size, self.out_dir, self.fmt = batch_size, Path(out_dir), fmt

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from distilora.inference.predict_file import predict_file

        rows, seconds = [], []
        for shard in batch["shard"]:
            tick = time.perf_counter()
            target = output_shard(self.out_dir, Path(shard), self.fmt)
            rows.append(predict_file(self.classifier, str(shard), str(target), self.data, batch_size=self.batch_size,
                                     progress=False))
            seconds.append(time.perf_counter() - tick)
        return {"shard": batch["shard"], "rows": np.asarray(rows), "seconds": np.asarray(seconds)}


def score_corpus(run: Path, pattern: str, out_dir: Path, *, address: str = "local", backend: str = "auto",
                 actors: int | None = None, threads: int = 1, batch_size: int = 64, fmt: str = "parquet",
                 data_overrides: list[str] | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Score every shard not yet in out_dir, read with the run's data mapping changed by data_overrides; returns
    counts, texts/s and the engine used."""
    from distilora.config import file_data_config

    if fmt not in SHARD_FORMATS:
        raise ConfigError(f"--shard-format {fmt!r}: choose one of {', '.join(SHARD_FORMATS)}")
    RunFolder(run).info()  # a missing or damaged run fails here, before Ray starts
    file_data_config(RunFolder(run).config_yaml, data_overrides)  # and so does a bad mapping
    shards = input_shards(pattern)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = [s for s in shards if not output_shard(out_dir, s, fmt).is_file()]
    engine = fastest_backend(RunFolder(run)) if backend == "auto" else backend
    say(f"{len(shards)} shards, {len(shards) - len(pending)} already written (skipped), {len(pending)} to score "
        f"with {engine}")
    if not pending:
        return {"shards": len(shards), "skipped": len(shards), "scored": 0, "rows": 0, "backend": engine}
    ray = _start_ray(address)
    pool = actors or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
    pool = min(pool, len(pending))
    tick = time.perf_counter()
    # one block per shard, made in this process: no read tasks that would wait for CPUs the actors hold
    dataset = ray.data.from_items([{"shard": str(s)} for s in pending], override_num_blocks=len(pending))
    results = dataset.map_batches(
        ShardScorer, batch_size=1, concurrency=pool, num_cpus=threads,
        fn_constructor_kwargs={"run": str(run), "backend": engine, "threads": threads, "batch_size": batch_size,
                               "out_dir": str(out_dir), "fmt": fmt, "data_overrides": data_overrides or []}).take_all()
    wall = time.perf_counter() - tick
    rows = int(sum(r["rows"] for r in results))
    say(f"scored {len(results)} shards, {rows:,} texts in {wall:.1f} s ({rows / wall:,.0f} texts/s) on {pool} "
        f"actors x {threads} threads; output in {out_dir}")
    return {"shards": len(shards), "skipped": len(shards) - len(pending), "scored": len(results), "rows": rows,
            "seconds": round(wall, 2), "texts_per_s": round(rows / wall, 1), "actors": pool, "threads": threads,
            "backend": engine}


def _start_ray(address: str) -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'ray[data]' (or pip install 'distilora[ray]')") from None
    ray.init(address=None if address == "local" else address, ignore_reinit_error=True, log_to_driver=False,
             include_dashboard=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray
