"""Sweeps on a tiny model: a grid writes one run per trial plus results and plots, re-running trains nothing,
a partial trial is resumed, typos fail before training, and an Optuna search continues where it stopped."""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distilora.errors import ConfigError
from distilora.sweep import grid_sweep, optuna_sweep, parse_grid, parse_space
from test_train_e2e import ENV, tiny_raw


@pytest.fixture()
def config(tmp_path):
    raw = tiny_raw(tmp_path, rows=80, epochs=1, batch_size=16)
    raw["eval"]["report"] = False
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_grid_sweep_writes_runs_results_and_plots_and_resumes(tmp_path, config, monkeypatch):
    out = tmp_path / "sweep"
    rows = grid_sweep(config, parse_grid(["peft.r=2,4", "train.lr=1e-3,5e-3"]), out, metric="accuracy", split="test",
                      say=lambda _: None)
    assert len(rows) == 4 and len(list((out / "trials").iterdir())) == 4
    table = list(csv.DictReader((out / "results.csv").open()))
    assert len(table) == 4 and {r["peft.r"] for r in table} == {"2", "4"}
    header = (out / "results.md").read_text().splitlines()[0].split(" | ")
    assert "**best**" in (out / "results.md").read_text() and header.count("accuracy") == 1
    assert table[0]["vs_best"] == "best"
    for row in table[1:]:  # each trial against the best on the same test texts: never ahead of it
        gap = re.fullmatch(r"([+-]\d\.\d{4}) \[([+-]\d\.\d{4}), ([+-]\d\.\d{4})\] (behind|within noise)", row["vs_best"])
        assert gap, row["vs_best"]
        assert float(gap[1]) == pytest.approx(float(row["accuracy"]) - float(table[0]["accuracy"]), abs=1e-4)
        assert float(gap[2]) <= float(gap[1]) <= float(gap[3])
    for plot in ("metric_vs_peft.r.png", "metric_vs_train.lr.png", "metric_vs_time.png"):
        assert (out / plot).stat().st_size > 1000

    import distilora.training.runner as runner

    calls = []
    original = runner.train
    monkeypatch.setattr(runner, "train", lambda cfg, **kw: calls.append(kw) or original(cfg, **kw))
    again = grid_sweep(config, parse_grid(["peft.r=2,4", "train.lr=1e-3,5e-3"]), out, metric="accuracy",
                       split="test", say=lambda _: None)
    assert calls == [] and [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]

    victim = out / "trials" / "peft.r=2,train.lr=0.001"
    shutil.move(victim, victim.with_name(victim.name + ".partial"))  # as if killed before finishing
    (victim.with_name(victim.name + ".partial") / "run.json").unlink()
    grid_sweep(config, parse_grid(["peft.r=2", "train.lr=1e-3"]), out, metric="accuracy", split="test",
               say=lambda _: None)
    assert calls == [{"resume": True}] and (victim / "run.json").is_file()


def test_grid_trials_run_through_ray_tune_as_ordinary_run_folders(tmp_path, config):
    pytest.importorskip("ray.tune", reason="Ray Tune not installed (pip install 'ray[tune]')")
    import ray

    out = tmp_path / "sweep"
    grid = parse_grid(["peft.r=2,4"])
    try:
        rows = grid_sweep(config, grid, out, metric="accuracy", split="test", say=lambda _: None,
                          ray_address="local", cpus_per_trial=1)
    finally:
        ray.shutdown()
    assert [r["peft.r"] for r in rows] == [2, 4]
    for row in rows:
        assert (Path(row["run"]) / "run.json").is_file() and row["accuracy"] is not None
    sequential = grid_sweep(config, grid, out, metric="accuracy", split="test", say=lambda _: None)
    assert [r["accuracy"] for r in sequential] == [r["accuracy"] for r in rows]  # read back, not retrained


def test_typos_fail_before_any_training(tmp_path, config):
    with pytest.raises(ConfigError, match="unknown key 'peft.rank'"):
        grid_sweep(config, parse_grid(["peft.rank=1,2"]), tmp_path / "s", metric="accuracy", split="test")
    assert not (tmp_path / "s" / "trials").exists()
    with pytest.raises(ConfigError, match=r"^--grid peft.r=abc: peft.r: Input should be a valid integer"):
        grid_sweep(config, parse_grid(["peft.r=1,abc"]), tmp_path / "s", metric="accuracy", split="test")
    with pytest.raises(ConfigError, match=r"^--set peft.alpha=x: peft.alpha"):  # the base overrides keep their name
        grid_sweep(config, parse_grid(["peft.r=1,2"]), tmp_path / "s", metric="accuracy", split="test",
                   base=["peft.alpha=x"])
    assert not (tmp_path / "s" / "trials").exists()
    with pytest.raises(ConfigError, match="expected FIELD=V1,V2"):
        parse_grid(["peft.r"])
    with pytest.raises(ConfigError, match="loguniform:LOW:HIGH"):
        parse_space(["train.lr=log:1:2"])


def test_a_grid_value_of_null_switches_a_field_off(tmp_path, config):
    from distilora.sweep import _trial_config

    grid = parse_grid(["train.lr=null,1e-3"])
    assert grid == {"train.lr": [None, 0.001]}
    off, on = (_trial_config(config, [], {"train.lr": value}, tmp_path) for value in grid["train.lr"])
    assert off.train.lr is None and on.train.lr == 0.001


def test_optuna_search_continues_instead_of_restarting(tmp_path, config):
    out = tmp_path / "opt"
    space = parse_space(["train.lr=loguniform:1e-4:1e-2", "peft.r=choice:2,4"])
    first = optuna_sweep(config, space, out, trials=2, metric="accuracy", split="test", say=lambda _: None)
    assert len(first) == 2
    second = optuna_sweep(config, space, out, trials=3, metric="accuracy", split="test", say=lambda _: None)
    assert len(second) == 3 and len(list((out / "trials").iterdir())) == 3


def test_sweep_cli(tmp_path, config):
    out = subprocess.run([sys.executable, "-m", "distilora.cli", "sweep", str(config), "--grid", "peft.r=2,4",
                          "--out", str(tmp_path / "cli")], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "trial 2/2 peft.r=4" in out.stdout and "results in" in out.stdout


def test_compare_runs_cli(tmp_path, config):
    grid_sweep(config, parse_grid(["peft.r=2,4"]), tmp_path / "s", metric="accuracy", split="test", say=lambda _: None)
    runs = sorted(str(p) for p in (tmp_path / "s" / "trials").iterdir())
    out = subprocess.run([sys.executable, "-m", "distilora.cli", "compare", *runs, "--out", str(tmp_path / "cmp")],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    table = list(csv.DictReader((tmp_path / "cmp" / "comparison.csv").open()))
    assert [r["run"] for r in table] == ["peft.r=2", "peft.r=4"] and all(r["method"] == "lora" for r in table)
    assert int(table[0]["trainable_params"]) < int(table[1]["trainable_params"])  # rank 2 adapters are smaller
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000
    # how sure: intervals for both runs, the second paired with the first (same test texts) and given a verdict
    section = (tmp_path / "cmp" / "comparison.md").read_text().split("## How sure")[1]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| peft.r")]
    assert [r[1] for r in rows] == ["accuracy", "f1", "roc_auc", "pr_auc"] * 2
    assert rows[0][-1].startswith("baseline") and rows[4][-1].rstrip(" |") in ("ahead", "behind", "within noise")
    assert "How sure" in out.stdout


def test_compare_pairs_runs_on_shared_texts_only(tmp_path, config):
    import json

    from distilora.reporting.compare import certainty_rows

    grid_sweep(config, parse_grid(["peft.r=2,4"]), tmp_path / "s", metric="accuracy", split="test", say=lambda _: None)
    first, second = sorted((tmp_path / "s" / "trials").iterdir())
    predictions = second / "predictions" / "test.jsonl"
    lines = predictions.read_text().split("\n")
    predictions.write_text("\n".join(lines[1:]))  # scored on a sample of the first run's test texts
    shared = len([line for line in lines[1:] if line.strip()])
    rows = certainty_rows([first, second], "test")
    assert rows[-1]["verdict"].endswith(f"(paired on {shared} shared texts)") and "difference" in rows[-1]
    other = [json.loads(line) for line in lines if line.strip()]
    predictions.write_text("\n".join(json.dumps({**r, "text": r["text"] + " (other file)"}) for r in other))
    rows = certainty_rows([first, second], "test")
    assert rows[-1]["verdict"].startswith("not paired: no test text in common") and "difference" not in rows[-1]
    assert rows[-1]["low"] <= rows[-1]["value"] <= rows[-1]["high"]  # its own interval is still given
