"""Sweeps: a grid or an Optuna search over config fields, where every trial is an ordinary run folder.

Finished trials are read back, unfinished ones resumed, so running the same sweep again continues it. Results go
to OUT/results.csv and results.md, with plots of the metric against each swept field and against training time, and
each trial's gap to the best with its paired 95% interval: a best trial within noise of others is no real winner.
"""
from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from distilora.config import RunConfig, load_config
from distilora.errors import ConfigError
from distilora.reporting.compare import paired_change
from distilora.runfolder import RunFolder, atomic_write_text, partial_path, write_csv_atomic
from distilora.training.runner import finished_run

TRIAL_COLUMNS = ("accuracy", "train_seconds", "samples_per_s", "trainable_params", "run", "wall_seconds")
REDO_HINT = "sweep into another --out folder, or delete that trial folder to train it again"
SPACE_FORMS = "FIELD=loguniform:LOW:HIGH, FIELD=uniform:LOW:HIGH, FIELD=int:LOW:HIGH or FIELD=choice:A,B,C"


def _scalar(text: str) -> Any:
    """A YAML scalar, with '1e-3' read as a number (YAML 1.1 wants '1.0e-3')."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """['peft.r=1,8,16', 'train.lr=1e-3,5e-4'] -> {'peft.r': [1, 8, 16], 'train.lr': [0.001, 0.0005]}."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or not field or not values:
            raise ConfigError(f"--grid {item!r}: expected FIELD=V1,V2,... e.g. --grid peft.r=1,8,16")
        grid[field.strip()] = [_scalar(v) for v in values.split(",")]
    return grid


def trial_slug(values: dict[str, Any]) -> str:
    """A folder name that says what the trial is: 'peft.r=8,train.lr=0.0005'."""
    text = ",".join(f"{k}={v}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def _trial_config(config_path: Path | None, base: list[str], values: dict[str, Any], out: Path,
                  flag: str = "--grid") -> RunConfig:
    written = {k: "null" if v is None else v for k, v in values.items()}  # so a grid can switch a field off
    overrides = [*base, *(f"{k}={v}" for k, v in written.items()), f"output_dir={out / 'trials' / trial_slug(values)}"]
    return load_config(config_path, overrides, flags={k: flag for k in values})  # errors name --grid / --space


def run_trial(config: RunConfig, metric: str, split: str, values: dict[str, Any]) -> dict[str, Any]:
    """Train one trial unless its run folder is finished already (resume a partial one); return its results row."""
    from distilora.training.runner import train

    run_dir = config.run_dir
    started = time.perf_counter()
    if not finished_run(config, REDO_HINT):
        train(config, resume=partial_path(run_dir).exists())
    folder = RunFolder(run_dir)
    info = folder.info()
    metrics = folder.metrics(split) or folder.metrics("validation") or {}
    if metrics and metric not in metrics:
        known = ", ".join(sorted(k for k, v in metrics.items() if isinstance(v, float)))
        raise ConfigError(f"--metric {metric}: a {info.task} run has no such metric; choose one of {known}")
    return {**values, metric: metrics.get(metric), "accuracy": metrics.get("accuracy"),
            "train_seconds": info.train_seconds, "samples_per_s": info.train_samples_per_second,
            "trainable_params": info.trainable_params, "run": str(run_dir),
            "wall_seconds": round(time.perf_counter() - started, 1)}


def grid_sweep(config_path: Path | None, grid: dict[str, list[Any]], out: Path, *, metric: str, split: str,
               base: list[str] | None = None, say: Callable[[str], None] = print, ray_address: str | None = None,
               cpus_per_trial: float = 1.0) -> list[dict[str, Any]]:
    """Every combination of the grid; all trial configs are validated before anything trains. Trials run one after
    another here, or as Ray Tune trials when ``ray_address`` is given ('local' starts Ray on this machine)."""
    fields = list(grid)
    combos = [dict(zip(fields, combo)) for combo in itertools.product(*grid.values())]
    configs = [_trial_config(config_path, base or [], values, out) for values in combos]  # typos fail here, fast
    for config in configs:  # a trial folder left by another base config or --set is refused before anything trains
        finished_run(config, REDO_HINT)
    if ray_address is not None:
        rows = _ray_trials(list(zip(combos, configs)), out, metric, split, ray_address, cpus_per_trial)
        for number, (values, row) in enumerate(zip(combos, rows), start=1):
            say(_trial_line(number, len(combos), values, row, metric))
    else:
        rows = []
        for number, (values, config) in enumerate(zip(combos, configs), start=1):
            row = run_trial(config, metric, split, values)
            rows.append(row)
            say(_trial_line(number, len(combos), values, row, metric))
    write_results(rows, fields, out, metric, split)
    return rows


def _ray_trials(jobs: list[tuple[dict[str, Any], RunConfig]], out: Path, metric: str, split: str, address: str,
                cpus_per_trial: float) -> list[dict[str, Any]]:
    """Run the trials through Ray Tune, as many at once as the cluster's CPUs allow. Every trial is still an
    ordinary run folder (finished ones are read back, partial ones resumed), so on a multi-machine cluster the data
    and OUT must be on a file system that every node sees."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError("--ray needs Ray Tune: pip install 'ray[tune]'") from None

    ray.init(address=None if address == "local" else address, ignore_reinit_error=True, log_to_driver=False,
             include_dashboard=False, configure_logging=False)

    def trainable(params: dict[str, Any]) -> dict[str, Any]:
        values, config = jobs[params["index"]]
        return run_trial(config, metric, split, values)

    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": cpus_per_trial}),
                       param_space={"index": tune.grid_search(list(range(len(jobs))))},
                       run_config=tune.RunConfig(name="ray", storage_path=str(out.resolve()), verbose=0))
    results = tuner.fit()
    rows: dict[int, dict[str, Any]] = {}
    for result in results:
        if result.error is not None:
            raise result.error
        index = result.config["index"]
        rows[index] = {**jobs[index][0], **{key: result.metrics.get(key) for key in (metric, *TRIAL_COLUMNS)}}
    return [rows[index] for index in range(len(jobs))]


def _trial_line(number: int, total: int, values: dict[str, Any], row: dict[str, Any], metric: str) -> str:
    return f"trial {number}/{total} {trial_slug(values)}: {metric} {_fmt(row[metric])} ({row['wall_seconds']} s)"


def parse_space(items: list[str]) -> dict[str, tuple[str, list[Any]]]:
    space = {}
    for item in items:
        field, sep, spec = item.partition("=")
        kind, _, args = spec.partition(":")
        if not sep or kind not in ("loguniform", "uniform", "int", "choice") or not args:
            raise ConfigError(f"--space {item!r}: expected {SPACE_FORMS}")
        values = [_scalar(v) for v in (args.split(",") if kind == "choice" else args.split(":"))]
        if kind != "choice" and len(values) != 2:
            raise ConfigError(f"--space {item!r}: {kind} needs LOW:HIGH")
        space[field.strip()] = (kind, values)
    return space


def optuna_sweep(config_path: Path | None, space: dict[str, tuple[str, list[Any]]], out: Path, *, trials: int,
                 metric: str, split: str, sampler: str = "tpe", base: list[str] | None = None, seed: int = 42,
                 say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Bayesian (TPE) or random search; the study lives in OUT/optuna.db, so re-running continues it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("--search optuna needs Optuna: pip install optuna") from None
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="distilora", storage=f"sqlite:///{out / 'optuna.db'}",
                                direction="minimize" if metric.endswith("loss") else "maximize", load_if_exists=True)
    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    # a continued search must not replay the first draws: the seed moves on with the finished trials
    study.sampler = (optuna.samplers.TPESampler(seed=seed + done) if sampler == "tpe"
                     else optuna.samplers.RandomSampler(seed=seed + done))
    _trial_config(config_path, base or [], {}, out)  # a bad base config fails before the first trial
    rows: list[dict[str, Any]] = []

    def objective(trial) -> float:
        values = {}
        for field, (kind, args) in space.items():
            if kind == "choice":
                values[field] = trial.suggest_categorical(field, args)
            elif kind == "int":
                values[field] = trial.suggest_int(field, int(args[0]), int(args[1]))
            else:
                values[field] = trial.suggest_float(field, float(args[0]), float(args[1]), log=kind == "loguniform")
        row = run_trial(_trial_config(config_path, base or [], values, out, "--space"), metric, split, values)
        say(_trial_line(trial.number + 1, trials, values, row, metric))
        return float(row[metric])

    if trials > done:
        study.optimize(objective, n_trials=trials - done)
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            rows.append(run_trial(_trial_config(config_path, base or [], t.params, out, "--space"), metric, split,
                                  t.params))
    write_results(rows, list(space), out, metric, split)
    return rows


def write_results(rows: list[dict[str, Any]], fields: list[str], out: Path, metric: str, split: str) -> None:
    """results.csv, results.md (best first, best marked, each trial's gap to the best with its 95% interval) and the
    plots."""
    if not rows:
        return
    lower_better = metric.endswith("loss")
    ranked = sorted(rows, key=lambda r: (r[metric] is None, r[metric] if lower_better else -(r[metric] or 0)))
    for row in ranked:
        row["vs_best"] = _versus_best(ranked[0]["run"], row["run"], metric, split)
    columns = list(dict.fromkeys([*fields, metric, "vs_best", "accuracy", "train_seconds", "samples_per_s",
                                  "trainable_params", "run"]))  # --metric accuracy would otherwise be a column twice
    write_csv_atomic(out / "results.csv", ranked, columns)
    lines = ["| best | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for i, row in enumerate(ranked):
        lines.append(f"| {'**best**' if i == 0 else ''} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    lines += ["", f"vs_best: the trial's {metric} minus the best trial's on the same texts, with its 95% paired "
              "bootstrap interval; within noise: the split cannot tell the two apart, so pick among those by cost."]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    _plots(rows, fields, out, metric)


def _versus_best(best_run: str, run: str, metric: str, split: str) -> str:
    """A trial's gap to the best one on the split it was scored on, with interval and verdict; blank for a metric
    the intervals do not cover."""
    if run == best_run:
        return "best"
    used = split if RunFolder(run).metrics(split) else "validation"  # as run_trial reads it
    changes, note = paired_change(Path(best_run), Path(run), used)
    change = changes.get(metric)
    if change is None:
        return ""
    return (f"{change['difference']:+.4f} [{change['low']:+.4f}, {change['high']:+.4f}] "
            f"{change['verdict']}{note}")


def _plots(rows: list[dict[str, Any]], fields: list[str], out: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for field in fields:
        fig, ax = plt.subplots(figsize=(6, 4))
        others = [f for f in fields if f != field]
        groups: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row[o] for o in others), []).append(row)
        for key, group in groups.items():
            group = sorted(group, key=lambda r: r[field])
            label = ", ".join(f"{o}={v}" for o, v in zip(others, key)) or None
            ax.plot([str(r[field]) if isinstance(r[field], str) else r[field] for r in group],
                    [r[metric] for r in group], "o-", label=label)
        if all(isinstance(r[field], (int, float)) for r in rows) and min(r[field] for r in rows) > 0 \
                and max(r[field] for r in rows) / min(r[field] for r in rows) >= 20:
            ax.set_xscale("log")
        ax.set(xlabel=field, ylabel=metric, title=f"{metric} vs {field}")
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"metric_vs_{field}.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        ax.scatter(row["train_seconds"], row[metric], color="#2563eb")
        ax.annotate(trial_slug({f: row[f] for f in fields}), (row["train_seconds"], row[metric]), fontsize=6)
    ax.set(xlabel="training seconds", ylabel=metric, title=f"{metric} vs training time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "metric_vs_time.png", dpi=110)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
