"""Every example in examples/ runs: each YAML config trains end to end for a few steps on a tiny random model with
a few rows of its own real data (same columns, same format quirks), every command in the example READMEs and
config headers parses and validates (sweep grids included), and every prepare.py builds its file from the real
data. Examples whose data is absent are skipped with the file they need."""
from __future__ import annotations

import functools
import importlib.util
import itertools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tinymodels import write_tiny_backbone

from distilora.config import DataConfig, RunConfig, build_config, load_config
from distilora.data.readers import detect_format, read_table
from distilora.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"
CONFIGS = sorted({*EXAMPLES.glob("*/*.yaml"), *EXAMPLES.glob("*/*.yml")})
READMES = sorted(EXAMPLES.glob("*/README.md"))
PREPARE_SCRIPTS = sorted(EXAMPLES.glob("*/prepare.py"))
PER_CLASS = 6  # rows of each class taken from the top of a real file
TEACHER_LAYERS = 4


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _dotted(config: RunConfig, field: str) -> Any:
    value: Any = config
    for part in field.split("."):
        value = getattr(value, part)
    return value


# ------------------------------------------------------------------------------------------------ few-row data

@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Run an example's prepare.py once (as its README does, in a subprocess) into a temporary folder."""
    folder = tmp_path_factory.mktemp("prepared")
    outputs: dict[tuple[Path, str], Path] = {}

    def run(script: Path, name: str = "prepared.csv") -> Path:
        if not SHARED_DATA.is_dir():
            pytest.skip(f"{_rel(script)} needs the shared data at {SHARED_DATA}")
        key = (script, name)
        if key not in outputs:
            out = folder / script.parent.name / name
            # a script that writes several files (train and test) takes a folder, one that writes one file its path
            target = ["--out-dir", str(out.parent)] if "--out-dir" in script.read_text() else ["--out", str(out)]
            done = subprocess.run([sys.executable, str(script), "--data-dir", str(SHARED_DATA), *target],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, f"{_rel(script)} failed:\n{done.stderr[-2000:]}"
            outputs[key] = out
        return outputs[key]

    return run


@functools.cache
def _read_cached(path: str, data_json: str):
    return read_table(path, DataConfig.model_validate_json(data_json))


def _source_file(path: str, prepared) -> Path:
    """The real file a config names: under ../shared/data, or written by the example's prepare.py."""
    location = Path(path) if Path(path).is_absolute() else ROOT / path
    try:
        inside = location.resolve().relative_to(EXAMPLES.resolve())
    except ValueError:
        inside = None
    if inside is not None and (EXAMPLES / inside.parts[0] / "prepare.py").is_file():
        return prepared(EXAMPLES / inside.parts[0] / "prepare.py", location.name)
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs {path} from the shared data at {SHARED_DATA} (absent)")
    assert location.exists(), f"{path} is not there although {SHARED_DATA} is: the example names a wrong file"
    return location


def _write_like(table, source: Path, data: DataConfig, out: Path) -> Path:
    """Write rows in the source's format, delimiter, quoting, header and encoding, so they read back the same."""
    fmt = detect_format(str(source), data)
    if fmt in ("csv", "tsv"):
        sep = data.delimiter or ("," if fmt == "csv" else "\t")
        if data.quoting == "none":  # cells read without quoting hold no delimiter or newline: join them back
            lines = [sep.join(map(str, row)) for row in table.itertuples(index=False)]
            header = [sep.join(map(str, table.columns))] if data.header else []
            out.write_text("\n".join(header + lines) + "\n", encoding=data.encoding)
        else:
            table.to_csv(out, sep=sep, index=False, header=data.header, encoding=data.encoding)
    elif fmt == "jsonl":
        table.to_json(out, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        table.to_parquet(out)
    else:
        pytest.skip(f"{source}: making a few-row copy of a {fmt!r} source is not supported here")
    return out


def _few_rows(path: str, data: DataConfig, out_dir: Path, prepared, *, keys: tuple[str, set] | None = None) -> str:
    """A small file with the same columns and quirks: the first PER_CLASS rows of each class of the real file
    (or, with keys, the rows whose key column is in the given set)."""
    source = _source_file(path, prepared)
    table = _read_cached(str(source), data.model_dump_json())
    if keys is not None:
        column, wanted = keys
        picked = table[table[column].isin(wanted)]
    elif isinstance(data.label_column, str) and data.label_column in table.columns and not data.label_separator:
        picked = table.groupby(data.label_column, sort=False).head(PER_CLASS)
    else:
        picked = table.head(4 * PER_CLASS)
    out_dir.mkdir(parents=True, exist_ok=True)
    return str(_write_like(picked, source, data, out_dir / f"{len(list(out_dir.iterdir()))}-{source.name}"))


def _tiny_raw(config: RunConfig, tmp_path: Path, backbone: Path, prepared, name: str) -> dict:
    """The example config with a tiny backbone, few-row copies of its data and a handful of training steps."""
    raw = config.model_dump(mode="json")
    data = config.data
    files = tmp_path / f"{name}-data"
    for split in ("train", "validation", "test"):
        if raw["data"][split]:
            raw["data"][split] = _few_rows(raw["data"][split], data, files, prepared)
    distill = raw["distill"]
    if distill["aux_file"]:
        train_keys = set(_read_cached(raw["data"]["train"], data.model_dump_json())[distill["aux_key"]])
        distill["aux_file"] = _few_rows(distill["aux_file"], data, files, prepared, keys=(distill["aux_key"], train_keys))
    raw["output_dir"] = str(tmp_path / name)
    raw["model"]["backbone"] = str(backbone)
    raw["data"]["max_length"] = 32
    raw["train"].update(max_steps=3, threads=1)
    raw["eval"]["report"] = False
    return raw


@pytest.fixture(scope="session")
def backbone(tmp_path_factory) -> Path:
    return write_tiny_backbone(tmp_path_factory.mktemp("tiny") / "backbone", layers=TEACHER_LAYERS)


@pytest.mark.realdata
@pytest.mark.parametrize("config_path", CONFIGS, ids=[_rel(p) for p in CONFIGS])
def test_example_config_trains_on_a_few_rows_of_its_data(config_path, tmp_path, backbone, prepared):
    from distilora.modeling.students import parse_layer_spec
    from distilora.training.runner import train

    config = load_config(config_path)
    raw = _tiny_raw(config, tmp_path, backbone, prepared, "run")
    if config.distill.unlabeled:  # the training texts, words reversed, stand in for the unlabelled file (the loader
        pool = tmp_path / "unlabeled.txt"  # leaves out the labelled texts themselves)
        texts = _read_cached(raw["data"]["train"], config.data.model_dump_json())[config.data.text_column]
        pool.write_text("".join(" ".join(reversed(text.split())) + "\n" for text in texts), encoding="utf-8")
        raw["distill"]["unlabeled"] = str(pool)
    if config.distill.teacher or config.distill.unlabeled or config.distill.augment:  # a tiny teacher stands in
        teacher = _tiny_raw(config, tmp_path, backbone, prepared, "teacher")
        teacher["model"]["method"] = "full"
        teacher["distill"].update(teacher=None, student_layers="all", aux_column=None, aux_file=None, aux_key=None,
                                  unlabeled=None, augment=0)
        raw["distill"]["teacher"] = str(train(build_config(teacher)))
    run = train(build_config(raw))

    folder = RunFolder(run)
    info = folder.info()
    assert run == tmp_path / "run" and (run / "run.json").is_file() and (run / "model").is_dir()
    splits = ["validation", *(["test"] if config.data.test or config.data.test_fraction > 0 else [])]
    for split in splits:
        metrics = folder.metrics(split)
        accuracy = metrics and metrics.get("subset_accuracy" if info.task == "multilabel" else "accuracy")
        assert metrics is not None and metrics["n"] > 0 and 0.0 <= accuracy <= 1.0, split
    assert info.method == config.model.method and len(info.labels) >= 2
    if config.distill.aux_column:
        assert info.aux_names, "the auxiliary scores were joined and named"
    if config.distill.student_layers != "all":
        assert info.student_layers == parse_layer_spec(config.distill.student_layers, TEACHER_LAYERS)


# ---------------------------------------------------------------------------- documented commands parse and validate

def _commands(path: Path) -> list[str]:
    """`distilora ...` and `python ...` lines from a README's code blocks or a config's header comments."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        blocks = text.split("```")[1::2]
        lines = [line for block in blocks for line in block.splitlines()]
    else:
        lines = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    return [line.strip() for line in lines if line.strip().startswith(("distilora ", "python "))]


DOCUMENTED = [(path, command) for path in [*READMES, *CONFIGS] for command in _commands(path)]


def _parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    import typer.main

    from distilora.cli import _expand_set_args, app

    group = typer.main.get_command(app)
    name, *rest = _expand_set_args(argv)
    assert name in group.commands, f"no command {name!r}"
    return name, group.commands[name].make_context(name, rest).params


def test_every_example_documents_its_commands():
    for config_path in CONFIGS:
        commands = _commands(config_path)
        assert any(_rel(config_path) in command for command in commands), \
            f"{_rel(config_path)}: the header comments should give the command that runs it from the repository root"
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        assert _commands(readme), f"{_rel(readme)} gives no command"
        sections = re.findall(r'^Results: .*BENCHMARKS\.md, section "([^"]+)"', text, flags=re.MULTILINE)
        assert sections, f"{_rel(readme)} should point at its BENCHMARKS.md section"
        headings = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.is_file() else ""
        for section in sections:
            assert re.search(rf"^## {re.escape(section)}", headings, flags=re.MULTILINE), \
                f"{_rel(readme)} points at BENCHMARKS.md section {section!r}, which does not exist"


@pytest.mark.parametrize("path, command", DOCUMENTED, ids=[f"{_rel(p)}: {c[:70]}" for p, c in DOCUMENTED])
def test_documented_command_parses_and_its_configs_validate(path, command):
    argv = shlex.split(command, comments=True)
    if argv[0] == "python":
        assert (ROOT / argv[1]).is_file(), f"{argv[1]} does not exist"
        return
    name, params = _parse(argv[1:])
    if name not in ("train", "distill", "sweep", "ship"):
        return
    assert params["config"] is not None and (ROOT / params["config"]).is_file(), params["config"]
    overrides = list(params.get("set_") or [])
    if name == "distill":
        if params["teacher"]:
            overrides.append(f"distill.teacher={params['teacher']}")
        if params["layers"]:
            layers = params["layers"]
            overrides.append(f"distill.student_layers=[{layers}]" if layers[0].isdigit()
                             else f"distill.student_layers={layers}")
    config = load_config(ROOT / params["config"], overrides)
    if name == "distill":
        assert config.distill.teacher or config.distill.aux_column, "a distill command needs a teacher or scores"
    if name != "sweep":
        return
    from distilora.sweep import parse_grid

    assert params["grid"], "the documented sweeps are grids"
    grid = parse_grid(params["grid"])
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        trial = load_config(ROOT / params["config"], [*overrides, *(f"{k}={v}" for k, v in values.items())])
        for field, value in values.items():  # each grid value reaches its field unchanged
            assert _dotted(trial, field) == value, (field, value, _dotted(trial, field))


# ------------------------------------------------------------------------------------------------- prepare.py

@pytest.mark.realdata
@pytest.mark.parametrize("script", PREPARE_SCRIPTS, ids=[_rel(p) for p in PREPARE_SCRIPTS])
def test_prepare_script_builds_text_label_files(script, prepared, tmp_path):
    import pandas as pd

    spec = importlib.util.spec_from_file_location(f"prepare_{script.parent.name}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defaults = getattr(module, "DEFAULT_OUTS", None) or [module.DEFAULT_OUT]  # several files, or one
    tables = {}
    for default_out in defaults:
        out = prepared(script, default_out.name if len(defaults) > 1 else "prepared.csv")
        tables[default_out.name] = table = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert list(table.columns) == ["text", "label"]
        assert (table["text"].str.strip() != "").all() and table["label"].nunique() >= 2
        assert not list(out.parent.glob(".*tmp*")) and not list(out.parent.glob("*.tmp")), "no temporary file left"
        if shutil.which("git") and (ROOT / ".git").exists():
            relative = default_out.relative_to(ROOT).as_posix()
            ignored = subprocess.run(["git", "check-ignore", "-q", relative], cwd=ROOT, check=False)
            assert ignored.returncode == 0, f"{relative} must be git-ignored (data never goes into the repository)"

    again = tmp_path / "again"
    module.main(["--data-dir", str(SHARED_DATA), *(["--out-dir", str(again)] if len(defaults) > 1
                                                   else ["--out", str(again / "prepared.csv")])])
    for name in tables:
        written = prepared(script, name if len(defaults) > 1 else "prepared.csv")
        again_file = again / (name if len(defaults) > 1 else "prepared.csv")
        assert again_file.read_bytes() == written.read_bytes(), "seeded: the same arguments give the same file"

    if script.parent.name == "unsafe_topics":
        _check_unsafe_topics(tables["unsafe_topics.csv"], module, tmp_path)
    if script.parent.name == "agnews":
        _check_agnews(tables, module)


def _check_agnews(tables: dict, module) -> None:
    import pandas as pd

    train, test = tables["train.csv"], tables["test.csv"]
    assert len(train) == 10_001 and len(test) == 7_600  # every row of both official files, titles left out
    assert set(train["label"]) == set(test["label"]) == set(module.CLASSES)
    raw = pd.read_csv(SHARED_DATA / "agnews" / "test.csv", header=None, dtype=str, keep_default_na=False)
    assert (test["label"] == raw[0].astype(int).map(lambda i: module.CLASSES[i - 1])).all()
    assert not train["text"].str.contains("#39;|quot;").any() and not test["text"].str.contains("#39;").any()
    assert module.clean("It #39;s a \\ test for  #36;10 quot;now quot;") == 'It\'s a test for $10"now"'


def _check_unsafe_topics(table, module, tmp_path: Path) -> None:
    import pandas as pd

    assert not table["text"].duplicated().any()
    hazards = pd.read_csv(SHARED_DATA / module.AILUMINATE, dtype=str, keep_default_na=False)
    expected = hazards.assign(text=hazards["prompt_text"].str.strip()).drop_duplicates("text")["hazard"].value_counts()
    counts = table["label"].value_counts()
    assert len(counts) == len(expected) + 1 == 16  # 15 hazard codes + safe
    assert counts["safe"] == 100
    for hazard, count in expected.items():
        assert counts[hazard] == count, hazard
    chats = pd.read_csv(SHARED_DATA / module.TOXICCHAT, dtype=str, keep_default_na=False)
    non_toxic = set(chats.loc[chats["toxicity"] == "0", "user_input"].str.strip())
    safe = table.loc[table["label"] == "safe", "text"]
    assert safe.isin(non_toxic).all()

    bigger = tmp_path / "bigger.csv"
    module.main(["--data-dir", str(SHARED_DATA), "--out", str(bigger), "--safe-rows", "150", "--seed", "1"])
    other = pd.read_csv(bigger, dtype=str, keep_default_na=False)
    assert (other["label"] == "safe").sum() == 150 and set(other["label"]) == set(table["label"])
    assert set(other.loc[other["label"] == "safe", "text"]) != set(safe)
    rest = pd.read_csv(tmp_path / "unlabeled.csv", dtype=str, keep_default_na=False)
    assert list(rest.columns) == ["text"] and len(rest) > 2000  # the teacher-only prompts for distill.unlabeled
    assert not rest["text"].isin(set(other["text"])).any(), "no labelled (validation or test) prompt is teacher-only text"
    assert not rest["text"].duplicated().any() and (rest["text"] != "").all()


@pytest.mark.realdata
def test_toxicchat_unlabeled_texts_hold_no_toxicchat_prompt(tmp_path):
    import pandas as pd

    if not SHARED_DATA.is_dir():
        pytest.skip(f"examples/toxicchat/unlabeled.py needs the shared data at {SHARED_DATA}")
    script = EXAMPLES / "toxicchat" / "unlabeled.py"
    spec = importlib.util.spec_from_file_location("toxicchat_unlabeled", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for out in outs:
        module.main(["--data-dir", str(SHARED_DATA), "--out", str(out), "--comments", "300"])
    assert outs[0].read_bytes() == outs[1].read_bytes(), "seeded: the same arguments give the same file"
    table = pd.read_csv(outs[0], dtype=str, keep_default_na=False)
    assert list(table.columns) == ["user_input"] and 1200 < len(table) <= 1500  # the config's own text column
    assert not table["user_input"].duplicated().any() and (table["user_input"] != "").all()
    chats = pd.concat([pd.read_csv(SHARED_DATA / path, dtype=str, keep_default_na=False) for path in module.TOXICCHAT])
    assert not table["user_input"].isin(set(chats["user_input"].str.strip())).any(), "no ToxicChat prompt"
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left"
    relative = module.DEFAULT_OUT.relative_to(ROOT).as_posix()
    if shutil.which("git") and (ROOT / ".git").exists():
        assert subprocess.run(["git", "check-ignore", "-q", relative], cwd=ROOT, check=False).returncode == 0
