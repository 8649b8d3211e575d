"""The run folder: the one artifact that training writes and everything downstream reads.

Layout (format 1)::

    RUN/
      run.json            RunInfo below: task, labels, method, thresholds, temperature, timings
      config.yaml         the resolved config that produced the run
      model/              Hugging Face save_pretrained folder + tokenizer:
                            method full/head -> config.json + model.safetensors
                            method lora      -> adapter_config.json + adapter_model.safetensors (PEFT format;
                                                the classification head is inside, as modules_to_save)
      base/               LoRA runs whose base exists nowhere else (a layer-dropped student, an added mean-pooling
                          layer): that base, save_pretrained, under the unwrapped parameter names
      merged/             optional (--merge / export merged): LoRA folded into full weights + tokenizer
      onnx/               optional (export): model.onnx (standard operators), model.fused.onnx (ONNX Runtime's
                          fused operators; BERT-type models), model.int8.onnx, tokenizer.json, export.json
      metrics/<split>.json        metrics per split (validation, test, or eval-<file stem> for `distilora eval`),
                                  with the headline metrics' 95% bootstrap intervals under "intervals"
      predictions/<split>.jsonl   one row per text: text (and text_pair for pair runs), label (gold), logits
      history.jsonl       one line per evaluation: step, epoch, train_loss, val metrics, lr, seconds
      data_summary.json   class counts and text lengths per split
      logs/               optional (train.report_to): experiment-tracker files kept with the run, e.g. TensorBoard
                          event files under logs/<name>/ (MLflow and hosted trackers keep their own stores)
      report.html, report.md
      errors-<split>.csv  written with the report: every mistake of the split (single-label), least p(true) first

JSON-lines files are split on "\n" only: texts may hold U+2028, U+0085 and other characters that
``str.splitlines`` would also break on, and ``json.dumps(ensure_ascii=False)`` leaves them unescaped.

Training writes into ``RUN.partial/`` and renames it to ``RUN/`` only when everything is written, so a killed
run never leaves a folder that looks complete; ``RUN.partial/checkpoints/`` is what ``--resume`` continues from.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from distilora.errors import RunFolderError

FORMAT_VERSION = 1
Task = Literal["binary", "multiclass", "multilabel"]

PARTIAL_SUFFIX = ".partial"


class RunInfo(BaseModel):
    """What a run folder says about its model; written once at the end of training, updated by export/tuning."""

    model_config = ConfigDict(extra="allow")

    format_version: int = FORMAT_VERSION
    task: Task
    labels: list[str]
    method: Literal["lora", "full", "head"]
    backbone: str
    max_length: int
    text_pair: bool = False
    thresholds: list[float] | None = None  # binary: [t] for the positive class; multilabel: one per label
    temperature: float = 1.0  # temperature scaling fitted on validation (1.0 = none)
    calibration: dict[str, Any] | None = None  # why that temperature: kept only if it lowered held-out validation NLL
    aux_names: list[str] | None = None  # auxiliary score targets from multi-target distillation
    student_layers: list[int] | None = None
    few_shot: bool = False  # trained with the tiny-data recipe (training/few_shot.py)
    validation_held_out: bool = True  # False: nothing was held out, the validation split is the training split
    precision: str | None = None  # what the steps ran in (Accelerate's mixed_precision: no, bf16, fp16)
    processes: int = 1  # data-parallel processes that trained it (torchrun / accelerate launch, over one or more machines)
    trainable_params: int | None = None
    total_params: int | None = None
    train_seconds: float | None = None
    train_samples_per_second: float | None = None
    peak_rss_mb: float | None = None  # the training process's peak resident memory (rank 0), training + evaluation
    best_step: int | None = None
    best_metric: dict[str, float] | None = None
    created: str | None = None


class RunFolder:
    """Paths and readers for one run folder; never creates anything by itself."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    run_json = property(lambda self: self.path / "run.json")
    config_yaml = property(lambda self: self.path / "config.yaml")
    model_dir = property(lambda self: self.path / "model")
    merged_dir = property(lambda self: self.path / "merged")
    base_dir = property(lambda self: self.path / "base")
    onnx_dir = property(lambda self: self.path / "onnx")
    metrics_dir = property(lambda self: self.path / "metrics")
    predictions_dir = property(lambda self: self.path / "predictions")
    history_jsonl = property(lambda self: self.path / "history.jsonl")
    card_md = property(lambda self: self.path / "README.md")
    data_summary_json = property(lambda self: self.path / "data_summary.json")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    logs_dir = property(lambda self: self.path / "logs")
    report_html = property(lambda self: self.path / "report.html")
    report_md = property(lambda self: self.path / "report.md")

    @property
    def is_lora(self) -> bool:
        return (self.model_dir / "adapter_config.json").is_file()

    @property
    def run_name(self) -> str:
        """The run's name, also while it is still written as RUN.partial (reports and cards are written then)."""
        return self.path.name.removesuffix(PARTIAL_SUFFIX)

    def errors_csv(self, split: str) -> Path:
        return self.path / f"errors-{split}.csv"

    def info(self) -> RunInfo:
        """Read run.json, with a clear error when this is not a finished run folder."""
        if not self.path.is_dir():
            partial = partial_path(self.path)
            hint = f"; an unfinished run is in {partial} (continue it with --resume)" if partial.is_dir() else ""
            raise RunFolderError(f"{self.path}: run folder not found{hint}")
        if not self.run_json.is_file():
            raise RunFolderError(f"{self.path}: not a distilora run folder (no run.json); pass the folder that `distilora train` wrote")
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
            info = RunInfo.model_validate(data)
        except (json.JSONDecodeError, ValidationError) as err:
            raise RunFolderError(f"{self.run_json}: unreadable run.json ({str(err).splitlines()[0]})") from None
        if info.format_version > FORMAT_VERSION:
            raise RunFolderError(f"{self.path}: run folder format {info.format_version} is newer than this distilora "
                                 f"understands ({FORMAT_VERSION}); upgrade distilora")
        return info

    def write_info(self, info: RunInfo) -> None:
        write_json_atomic(self.run_json, info.model_dump(mode="json"))

    def metrics(self, split: str) -> dict[str, Any] | None:
        path = self.metrics_dir / f"{split}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def write_metrics(self, split: str, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.metrics_dir / f"{split}.json", metrics)

    def history(self) -> list[dict[str, Any]]:
        if not self.history_jsonl.is_file():
            return []
        return [json.loads(line) for line in self.history_jsonl.read_text(encoding="utf-8").split("\n") if line.strip()]

    def predictions(self, split: str) -> list[dict[str, Any]]:
        path = self.predictions_dir / f"{split}.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]

    def write_predictions(self, split: str, rows: Any, texts: list[str], pairs: list[str] | None, labels: Any,
                          logits: Any) -> None:
        """predictions/<split>.jsonl: the row in its file, the text (and its pair), the gold label (None when
        unlabelled; a 0/1 list for multi-label) and the logits, rounded to 6 decimals."""
        out = []
        for i, text in enumerate(texts):
            label = None if labels is None else labels[i].tolist()
            pair = {} if pairs is None else {"text_pair": pairs[i]}
            out.append({"row": int(rows[i]), "text": text, **pair,
                        "label": [int(x) for x in label] if isinstance(label, list) else label,
                        "logits": [round(float(x), 6) for x in logits[i]]})
        write_jsonl_atomic(self.predictions_dir / f"{split}.jsonl", out)


class ShipFolder:
    """The folder `distilora ship` writes: one ordinary run folder per stage, plus the comparison of them all.

    Layout::

        SHIP/
          teacher/              the teacher run (unless ship.teacher names an existing one)
          teacher-folds/        with ship.teacher_folds: validation file, fold-<k>/ train/held files and run/
          student/              the student that keeps every layer of its backbone
          student-<layers>/     one per other ship.students entry, e.g. student-first-3
          ship.json             per model and engine: params, test metrics, train seconds, samples/s at batch 32
          comparison.md, comparison.png   the same as a table and an accuracy-vs-speed plot
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    teacher_dir = property(lambda self: self.path / "teacher")
    teacher_folds_dir = property(lambda self: self.path / "teacher-folds")
    ship_json = property(lambda self: self.path / "ship.json")
    comparison_md = property(lambda self: self.path / "comparison.md")
    comparison_png = property(lambda self: self.path / "comparison.png")

    def student_dir(self, layers: str | list[int]) -> Path:
        if layers == "all":
            return self.path / "student"
        spec = layers if isinstance(layers, str) else "-".join(map(str, layers))
        return self.path / f"student-{spec}"


class AuditFolder:
    """The folder `distilora audit` writes (default runs/<name>-audit); each audit replaces its files one by one.

    Layout::

        AUDIT/
          audit.json            settings (backbone, folds, seed), counts, out-of-fold accuracy, seconds
          issues.csv            flagged rows, worst label quality first: row, text, given/suggested label, ...
          report.html, report.md   the suspects as tables for a person to judge
          train-cleaned.<ext>   with --clean: the training file without (drop) or with fixed (relabel) labels
          folds/fold-<k>/       --method finetune: the fold's train/held files and its ordinary run folder (run/)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    audit_json = property(lambda self: self.path / "audit.json")
    issues_csv = property(lambda self: self.path / "issues.csv")
    report_html = property(lambda self: self.path / "report.html")
    report_md = property(lambda self: self.path / "report.md")
    cleaned_stem = property(lambda self: self.path / "train-cleaned")  # + the source format's suffix
    folds_dir = property(lambda self: self.path / "folds")


def fold_dir(folds_dir: Path, fold: int) -> Path:
    """One fold of a cross-fitting (an audit's, or a ship's fold teachers): its train/held files and run/."""
    return Path(folds_dir) / f"fold-{fold}"


def fold_run_dir(folds_dir: Path, fold: int) -> Path:
    return fold_dir(folds_dir, fold) / "run"


def default_audit_dir(run_dir: Path) -> Path:
    return run_dir.with_name(f"{run_dir.name}-audit") if run_dir.name else Path("audit")


def partial_path(final: Path) -> Path:
    final = final if final.name else final.resolve()  # output_dir '.' or 'runs/..' has no name of its own
    return final.with_name(final.name + PARTIAL_SUFFIX)


def is_run_folder(path: Path) -> bool:
    """A finished distilora run folder (run.json written by training)."""
    return (path / "run.json").is_file()


def foreign_contents(path: Path) -> list[str]:
    """What a folder holds that is not a distilora run: [] for a missing or empty folder or a run folder; else a few
    names of what is there, so that no --overwrite ever deletes a user's own files."""
    if not path.exists():
        return []
    if not path.is_dir():
        return [path.name]
    if is_run_folder(path):
        return []
    return sorted(p.name for p in path.iterdir())[:5]


def eval_name(data_file: str | Path) -> str:
    """The metrics/predictions name of an evaluation on another file: 'eval-<file stem>', never a split name, so
    `distilora eval RUN --data validation.csv` cannot replace the run's own validation results."""
    return f"eval-{Path(data_file).stem}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def default_file_mode() -> int:
    """0666 less the umask: what a plain open() would give (mkstemp makes 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; artifacts get the usual permissions
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_file(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temporary file beside ``path`` (e.g. safetensors' save_file), then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_csv_atomic(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A CSV with a header, written whole or not at all (texts keep their commas, quotes and newlines)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def replace_dir_atomic(staging: Path, final: Path) -> None:
    """Move a fully written staging folder into place, replacing any previous folder at ``final``."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_dir(final: Path) -> Path:
    """A fresh temporary folder beside ``final`` (same file system, so the later rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
