"""Config: validation messages, overrides, the annotated starter file, and CLI behaviour around it."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from distilora.config import RunConfig, annotated_yaml, build_config, load_config, parse_overrides
from distilora.errors import ConfigError


def test_defaults_make_a_lora_run_on_the_bundled_backbone():
    cfg = RunConfig()
    assert cfg.model.method == "lora" and cfg.model.backbone == "minilm"
    assert cfg.learning_rate() == 5e-4  # LoRA needs a far higher rate than full fine-tuning
    assert build_config({"model": {"method": "full"}}).learning_rate() == 5e-5


def test_overrides_are_typed_and_nested():
    cfg = build_config({}, ["peft.r=8", "train.lr=1e-3", "peft.target_modules=[query, value]", "data.labels=[a, b]"])
    assert cfg.peft.r == 8 and cfg.train.lr == 1e-3
    assert cfg.peft.target_modules == ["query", "value"] and cfg.data.labels == ["a", "b"]
    assert parse_overrides(["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


def test_unquoted_no_is_the_precision_no(tmp_path):
    """YAML reads `no` as false; `precision: no` must still mean fp32, and `yes` stays an error."""
    assert build_config({}, ["train.precision=no"]).train.precision == "no"
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  precision: no\n")
    assert load_config(path).train.precision == "no"
    with pytest.raises(ConfigError, match="train.precision"):
        build_config({}, ["train.precision=yes"])


@pytest.mark.parametrize("raw, overrides, message", [
    ({"trian": {}}, [], "unknown key 'trian'; did you mean 'train'?"),
    ({"train": {"batchsize": 3}}, [], "unknown key 'train.batchsize'; did you mean 'train.batch_size'?"),
    ({}, ["train.lr=abc"], "train.lr: Input should be a valid number"),
    ({}, ["model.method=qlora"], "model.method: Input should be 'lora', 'full' or 'head'"),
    ({}, ["noequals"], "expected KEY=VALUE"),
    ({}, ["eval.tune_threshold=precision:2"], "eval.tune_threshold: 'precision:2' is not valid"),
])
def test_bad_config_names_the_key(raw, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?").replace("[", r"\[")):
        build_config(raw, overrides)


def test_annotated_yaml_round_trips_to_the_defaults(tmp_path):
    text = annotated_yaml()
    assert "# LoRA rank." in text and "tune_threshold: f1" in text
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert load_config(path) == RunConfig()
    assert yaml.safe_load(RunConfig().to_yaml())["peft"]["r"] == 16


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found; create one with `distilora init"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "distilora.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_init_and_unknown_override_give_one_line_errors(tmp_path):
    out = _cli("init", str(tmp_path / "c.yaml"))
    assert out.returncode == 0 and (tmp_path / "c.yaml").is_file()
    again = _cli("init", str(tmp_path / "c.yaml"))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {tmp_path / 'c.yaml'}: already exists; pass --force to overwrite it"
    bad = _cli("train", str(tmp_path / "c.yaml"), "--set", "peft.rank=4", "train.lr=1e-3")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "unknown key 'peft.rank'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
