"""`distilora ship`: from data to a shipped student in one command — train big, ship small.

Stages, each an ordinary run folder or a cached computation, so a killed or stopped pipeline starts again where it
was: (1) teacher: LoRA on ship.teacher_backbone (or an existing teacher run), and with ship.teacher_folds that many
fold teachers, each trained like it on the other folds of the training split, (2) targets: the teacher's logits on
the training texts and any distill.unlabeled texts (cached in chunks), (3) students: one per ship.students entry on
model.backbone, trained on soft targets + labels, (4) export: each student to ONNX fp32 / int8, checked against
PyTorch, (5) compare: params, test metrics, training time and samples/s per model and engine, with a plot.

A stage whose folder is finished with the same config is reused; one finished with another config is refused,
naming the difference. This module sits above training, inference and reporting and is imported by none of them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from distilora.allocator import freed_memory_kept
from distilora.config import RunConfig, build_config, load_config
from distilora.errors import ConfigError
from distilora.memory import peak_rss_mb, reset_peak_rss
from distilora.runfolder import RunFolder, ShipFolder, fold_run_dir, partial_path, write_json_atomic

STAGES = ("teacher", "targets", "students", "export", "compare")
REDO_HINT = "delete that folder to train it again, or ship into another output_dir"


def teacher_config(config: RunConfig, folder: ShipFolder) -> RunConfig:
    """The teacher stage: the same data and evaluation, the teacher backbone, no distillation, its own overrides."""
    raw = config.model_dump(mode="json")
    raw.update(name=f"{config.name}-teacher", output_dir=str(folder.teacher_dir))
    raw["model"] = {**raw["model"], "backbone": config.ship.teacher_backbone}
    raw.pop("distill")
    raw.pop("ship")  # a stage's config is its own: changing the students keeps the teacher
    return build_config(raw, config.ship.teacher_set, source="ship.teacher_set")


def student_config(config: RunConfig, folder: ShipFolder, teacher: Path, layers: str | list[int]) -> RunConfig:
    """A student stage: the config as written, with the teacher's soft targets and the chosen layers."""
    raw = config.model_dump(mode="json")
    suffix = folder.student_dir(layers).name.removeprefix("student")
    raw.update(name=f"{config.name}-student{suffix}", output_dir=str(folder.student_dir(layers)))
    folds = [str(fold_run_dir(folder.teacher_folds_dir, k)) for k in range(config.ship.teacher_folds)]
    raw["distill"] = {**raw["distill"], "teacher": str(teacher), "student_layers": layers, "fold_teachers": folds}
    raw.pop("ship")
    return build_config(raw, source="ship.students")


def _train_stage(config: RunConfig, say: Callable[[str], None]) -> Path:
    from distilora.training.runner import finished_run, train

    if finished_run(config, REDO_HINT):
        say(f"{config.run_dir}: finished already, reused")
        return config.run_dir
    resume = partial_path(config.run_dir).exists()
    say(f"{config.run_dir}: {'resuming' if resume else 'training'}")
    return train(config, resume=resume)


def _fold_plan(student: RunConfig, folds: int) -> tuple[Any, Any]:
    """The student's training file and splits, checked to make ``folds`` folds (every class needs as many texts)."""
    from distilora.curation.label_audit import fold_assignment
    from distilora.data.loading import load_splits, read_training_file

    table, _, _ = read_training_file(student.data)
    splits = load_splits(student.data)
    made = int(fold_assignment(splits.train.labels, folds, student.data.seed).max()) + 1
    if made < folds:
        raise ConfigError(f"ship.teacher_folds: {folds} folds need {folds} training texts of every class, the rarest "
                          f"has {made}; lower ship.teacher_folds")
    return table, splits


def _fold_teachers_stage(config: RunConfig, teacher: RunConfig, plan: tuple[Any, Any],
                         say: Callable[[str], None]) -> list[Path]:
    """The teacher's config trained once per fold of the students' training split, on the same validation split: each
    fold teacher's test split is its fold, whose texts it never saw (distill.fold_teachers)."""
    from distilora.curation.fold_runs import train_fold_runs

    table, splits = plan
    carved = splits.validation_held_out and config.data.validation is None
    runs, _ = train_fold_runs(teacher, table, splits.train, ShipFolder(config.run_dir).teacher_folds_dir,
                              config.ship.teacher_folds, validation=splits.validation if carved else None, say=say)
    return runs


def _targets_stage(config: RunConfig, say: Callable[[str], None]) -> None:
    """Score the student's training texts and unlabelled texts with the teacher once; the student reads the cache."""
    from distilora.data.loading import load_splits
    from distilora.distill.fold_targets import student_soft_targets

    splits = load_splits(config.data, config.distill)
    student_soft_targets(config.distill, splits.train, splits.unlabeled, batch_size=config.eval.batch_size)
    say(f"teacher targets ready for {len(splits.train):,} training texts"
        + (f" and {len(splits.unlabeled):,} unlabelled texts" if splits.unlabeled is not None else ""))


def _export_stage(student: Path, formats: list[str], say: Callable[[str], None]) -> list[str]:
    """Export a student to each format; an export that fails its check is left out (and said), not fatal."""
    from distilora.errors import ExportError
    from distilora.inference.classifier import ONNX_FILES
    from distilora.inference.export import export_run

    refused = []
    for fmt in formats:
        if (RunFolder(student).onnx_dir / ONNX_FILES[fmt]).is_file():
            continue
        try:
            result = export_run(student, fmt)
        except ExportError as err:
            refused.append(f"{student.name} {fmt}: {err}")
            say(f"{student}: {fmt} left out: {err}")
            continue
        say(f"{student}: {fmt} written; accuracy {result['accuracy_export']:.4f} vs PyTorch "
            f"{result['accuracy_torch']:.4f} on {result['checked_texts']} texts")
    return refused


def ship(config: RunConfig, *, stop_after: str | None = None, say: Callable[[str], None] = print) -> Path:
    """Run every stage up to ``stop_after`` (default: all); returns the ship folder."""
    with freed_memory_kept(config.train.reuse_freed_memory):  # also for the teacher's scoring
        return _ship(config, stop_after, say)


def _ship(config: RunConfig, stop_after: str | None, say: Callable[[str], None]) -> Path:
    if stop_after is not None and stop_after not in STAGES:
        raise ConfigError(f"--stop-after {stop_after!r}: choose one of {', '.join(STAGES)}")
    folder = ShipFolder(config.run_dir)
    peaks: dict[str, float | None] = {}
    refused: list[str] = []
    teacher_cfg = None if config.ship.teacher else teacher_config(config, folder)
    students = [student_config(config, folder, Path(config.ship.teacher or folder.teacher_dir), layers)
                for layers in config.ship.students]  # every stage's config is checked before anything trains
    plan = _fold_plan(students[0], config.ship.teacher_folds) if config.ship.teacher_folds else None
    reset_peak_rss()
    teacher = Path(config.ship.teacher) if teacher_cfg is None else _train_stage(teacher_cfg, say)
    folds = [] if plan is None else _fold_teachers_stage(
        config, teacher_cfg or load_config(RunFolder(teacher).config_yaml), plan, say)
    peaks["teacher"] = _stage_peak_mb(([] if teacher_cfg is None else [teacher]) + folds)
    for stage in STAGES[1:]:
        if stop_after == STAGES[STAGES.index(stage) - 1]:
            return folder.path
        reset_peak_rss()
        if stage == "targets":
            _targets_stage(students[0], say)
        elif stage == "students":
            for student in students:
                _train_stage(student, say)
        elif stage == "export":
            for student in students:
                refused += _export_stage(student.run_dir, config.ship.export, say)
        else:
            _compare_stage(folder, teacher, [s.run_dir for s in students], {"peak_rss_mb_per_stage": peaks,
                                                                           "exports_refused": refused}, say)
        peaks[stage] = _stage_peak_mb([s.run_dir for s in students] if stage == "students" else [])
    return folder.path


def _stage_peak_mb(trained: list[Path]) -> float | None:
    """A stage's peak resident memory: this process's since the stage began, or a training's own where higher (each
    training restarts the count and keeps its peak in run.json, also when an earlier process ran it)."""
    known = [p for p in (peak_rss_mb(), *(RunFolder(run).info().peak_rss_mb for run in trained)) if p is not None]
    return max(known) if known else None


def engine_rows(runs: list[Path], timing_texts: int = 64) -> list[dict[str, Any]]:
    """One row per run and engine (torch; torch-bf16 where the CPU has native bf16; each exported ONNX graph): size,
    test metrics, training time, and samples/s on batches of 32 test texts, all timed here, one engine after
    another."""
    from distilora.cpu_bf16 import native_bf16
    from distilora.inference.classifier import ONNX_FILES, Classifier
    from distilora.inference.export import time_engine
    from distilora.reporting.compare import compare_runs

    rows = []
    for run, summary in zip(runs, compare_runs(runs, "test")):
        folder = RunFolder(run)
        predictions = folder.predictions(summary["split"])
        texts = [r["text"] for r in predictions]
        engines = ["torch", *(["torch-bf16"] if native_bf16() else []),
                   *(name for name, file in ONNX_FILES.items() if (folder.onnx_dir / file).is_file())]
        for engine in engines:
            classifier = Classifier.load(run, backend=engine)
            timing = time_engine(classifier, texts[:timing_texts])
            metrics = summary if engine == "torch" else _engine_metrics(classifier, predictions, texts)
            rows.append({**summary, **metrics, "run": folder.path.name, "engine": engine, **timing})
    return rows


def _engine_metrics(classifier: Any, predictions: list[dict[str, Any]], texts: list[str]) -> dict[str, Any]:
    """An exported engine's own metrics on the split (its decisions can differ from PyTorch's, int8 especially)."""
    from distilora.evaluation.metrics import evaluate_logits
    from distilora.reporting.compare import METRICS

    info = classifier.info
    labels = _gold(predictions, info.task)
    metrics = evaluate_logits(info.task, classifier.predict_logits(texts), labels, info.labels, info.temperature,
                              info.thresholds)
    return {m: metrics.get(m) for m in METRICS}


def _gold(rows: list[dict[str, Any]], task: str) -> Any:
    import numpy as np

    return np.asarray([r["label"] for r in rows], dtype=np.float32 if task == "multilabel" else np.int64)


def _compare_stage(folder: ShipFolder, teacher: Path, students: list[Path], notes: dict[str, Any],
                   say: Callable[[str], None]) -> None:
    from distilora.reporting.compare import certainty_rows, write_engine_comparison

    rows = engine_rows([teacher, *students])
    write_json_atomic(folder.ship_json, {"models": rows, **notes})
    # how far each student really is from its teacher on the test texts (PyTorch decisions, paired resamples)
    write_engine_comparison(rows, folder.comparison_md, folder.comparison_png, certainty_rows([teacher, *students]))
    say(Path(folder.comparison_md).read_text(encoding="utf-8"))
