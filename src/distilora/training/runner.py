"""One run, end to end: config -> data -> model -> fit -> decision rule -> metrics -> run folder.

Everything is written into ``RUN.partial/`` and renamed to ``RUN/`` as the last step, so a finished-looking
folder is always complete; ``resume=True`` continues a killed run from ``RUN.partial/checkpoints``.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilora.config import RunConfig
from distilora.data.dataset import TextSplit
from distilora.errors import ConfigError, RunFolderError
from distilora.runfolder import (RunFolder, RunInfo, atomic_write_text, foreign_contents, is_run_folder, now_iso,
                                 partial_path, replace_dir_atomic, write_json_atomic)
from distilora.training.accelerator import make_accelerator

if TYPE_CHECKING:
    from accelerate import Accelerator

    from distilora.data.dataset import DataSplits
    from distilora.data.labels import LabelSpace
    from distilora.modeling.build import BuiltModel
    from distilora.training.loop import TrainSet


# fields that change how a run is watched, not what it trains: a finished or half-done run stays itself without them
UNKEYED_FIELDS = ("train.report_to:",)


def _changes_from(folder: Path, config: RunConfig) -> str | None:
    """What differs between the config a run folder was started with and ``config``, or None when nothing does."""
    import yaml

    from distilora.config import build_config, config_differences

    saved_yaml = folder / "config.yaml"
    saved = yaml.safe_load(saved_yaml.read_text(encoding="utf-8")) if saved_yaml.is_file() else {}
    try:  # a field added since that run was written takes its default there, as it did then
        saved = build_config(saved or {}).model_dump(mode="json")
    except ConfigError:
        pass  # a config this version no longer accepts: compare it as written
    changes = [change for change in config_differences(saved or {}, config.model_dump(mode="json"))
               if not change.startswith(UNKEYED_FIELDS)]
    if not changes:
        return None
    return "; ".join(changes[:3]) + (f"; {len(changes) - 3} more" if len(changes) > 3 else "")


def finished_run(config: RunConfig, redo_hint: str) -> bool:
    """Whether config.run_dir already holds this very run (then it is reused as it is); a finished run trained from
    another config is refused, naming what differs, instead of being passed off as this one's result."""
    folder = RunFolder(config.run_dir)
    if not folder.run_json.is_file():
        return False
    changes = _changes_from(folder.path, config)
    if changes:
        raise ConfigError(f"{folder.path}: finished with another config ({changes}); {redo_hint}")
    return True


def _check_folder(config: RunConfig, final: Path, partial: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a finished or unfinished run unless told to, and any folder that is not a run ever; runs
    before anything is written."""
    ours = partial.is_dir() and RunFolder(partial).config_yaml.is_file()
    for folder, found in ((final, foreign_contents(final)), (partial, [] if ours else foreign_contents(partial))):
        if found:
            raise RunFolderError(f"{folder}: exists and is not a distilora run (it holds {', '.join(found)}); nothing "
                                 f"was changed: set output_dir to a new or empty folder")
    if is_run_folder(final) and not overwrite:
        raise RunFolderError(f"{final}: a finished run is already there; pass --overwrite to replace it "
                             f"or set output_dir / name to write elsewhere")
    if partial.exists() and not resume and not overwrite:
        raise RunFolderError(f"{partial}: an unfinished run is there; pass --resume to continue it "
                             f"or --overwrite to start over")
    changes = _changes_from(partial, config) if resume and partial.is_dir() else None
    if changes:
        raise RunFolderError(f"{partial}: this unfinished run was started with another config ({changes}); resume "
                             f"it with its own config, or pass --overwrite to start over")


def _layer_source(cfg: RunConfig) -> str:
    """Where a layer-dropped student's layers come from: the teacher's fine-tuned layers when it was trained on this
    run's backbone (or distill.layers_from says so), else the pretrained backbone, the teacher then giving only
    soft targets (which are per text, so any tokenizer works)."""
    from distilora.modeling.backbone import resolve_backbone

    choice = cfg.distill.layers_from
    if not cfg.distill.teacher or choice == "backbone":
        return "backbone"
    same = resolve_backbone(RunFolder(cfg.distill.teacher).info().backbone) == resolve_backbone(cfg.model.backbone)
    if choice == "teacher" and not same:  # copied layers keep the teacher's token ids: the vocabularies must agree
        from distilora.modeling.students import check_same_tokenizer

        check_same_tokenizer(RunFolder(cfg.distill.teacher).model_dir, resolve_backbone(cfg.model.backbone))
    return "teacher" if choice == "teacher" or same else "backbone"


def build_run_model(cfg: RunConfig, label_space: "LabelSpace") -> "BuiltModel":
    """The run's model: from the backbone, or a layer-dropped student of the teacher / backbone."""
    from distilora.modeling.backbone import resolve_backbone
    from distilora.modeling.build import build_model, load_classifier

    spec = cfg.distill.student_layers
    if spec == "all":
        return build_model(cfg, label_space)
    from distilora.modeling.students import build_student, describe_reduction, num_layers, parse_layer_spec

    if _layer_source(cfg) == "teacher":
        from distilora.modeling.loading import load_run_model

        source, _ = load_run_model(cfg.distill.teacher, merge=True)
    else:
        source = load_classifier(resolve_backbone(cfg.model.backbone), label_space, cfg.model.dropout)
    layers = parse_layer_spec(spec, num_layers(source))
    student = build_student(source, layers)
    reduction = describe_reduction(source, student)  # before LoRA wraps the student in place and adds adapters
    built = build_model(cfg, label_space, base=student)
    built.student_layers = layers
    built.notes.append(reduction)
    return built


def _training_set(cfg: RunConfig, splits: "DataSplits", encoded_train: Any, tokenizer: Any) -> "TrainSet":
    """Gold labels, plus teacher soft targets (alpha < 1) for the training texts and any unlabelled texts, which
    join the training set with a mask that keeps them out of the hard-label loss."""
    from distilora.training.loop import TrainSet

    train = splits.train
    if not (cfg.distill.teacher and cfg.distill.alpha < 1.0):  # alpha 1 = hard labels only: no teacher pass
        return TrainSet(encoded_train, train.labels, None, train.aux)
    from distilora.data.tokenize import Encoded
    from distilora.distill.fold_targets import student_soft_targets

    extra = splits.unlabeled
    soft, soft_extra = student_soft_targets(cfg.distill, train, extra, batch_size=cfg.eval.batch_size)
    if extra is None:
        return TrainSet(encoded_train, train.labels, soft, train.aux)
    encoded_extra = _encode(tokenizer, extra, cfg.data.max_length)
    placeholder = np.zeros((len(extra), *train.labels.shape[1:]), dtype=train.labels.dtype)
    aux = None if train.aux is None else np.concatenate(
        [train.aux, np.full((len(extra), train.aux.shape[1]), np.nan, dtype=np.float32)])
    return TrainSet(Encoded(encoded_train.input_ids + encoded_extra.input_ids,
                            encoded_train.token_type_ids + encoded_extra.token_type_ids),
                    np.concatenate([train.labels, placeholder]), np.concatenate([soft, soft_extra]),
                    aux, labelled=np.concatenate([np.ones(len(train), bool), np.zeros(len(extra), bool)]))


def _encode(tokenizer: Any, split: TextSplit | None, max_length: int):
    from distilora.data.tokenize import encode

    return None if split is None else encode(tokenizer, split.texts, split.pairs, max_length)


def _save_model(built: "BuiltModel", module: Any, cfg: RunConfig, partial: Path) -> None:
    from transformers import AutoTokenizer

    from distilora.modeling.backbone import quiet_transformers

    folder = RunFolder(partial)
    classifier = module.classifier
    if cfg.model.method == "lora" and not built.own_base:
        # record what the adapter sits on by a name that means the same on another machine (a named backbone's hub
        # id), not this machine's path into a venv; distilora resolves that name to its local copy again
        from distilora.modeling.backbone import portable_backbone_name

        classifier.peft_config["default"].base_model_name_or_path = portable_backbone_name(cfg.model.backbone)
    with quiet_transformers():
        # the vocabulary is never changed, so no embedding matrix is saved; peft's "auto" would otherwise look the
        # base model's config up on the Hub (a network call at every save, two warnings when offline)
        classifier.save_pretrained(folder.model_dir, safe_serialization=True, save_embedding_layers=False)
        AutoTokenizer.from_pretrained(built.backbone_path).save_pretrained(folder.model_dir)
    if module.aux_head is not None:
        from distilora.modeling.aux_head import save_aux_head

        save_aux_head(module.aux_head, folder.model_dir)
    if built.own_base and cfg.model.method == "lora":
        # a LoRA student's base (or one with the mean-pooling layer) is not any folder on disk: save it so the adapter
        # can be loaded onto it
        from distilora.modeling.build import plain_base_state

        with quiet_transformers():
            classifier.get_base_model().save_pretrained(folder.base_dir, state_dict=plain_base_state(classifier),
                                                        safe_serialization=True)


def train(config: RunConfig, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train, evaluate and write the run folder; returns its path."""
    from distilora.allocator import freed_memory_kept

    with freed_memory_kept(config.train.reuse_freed_memory):
        return _train(config, resume=resume, overwrite=overwrite)


def _train(config: RunConfig, *, resume: bool, overwrite: bool) -> Path:
    import torch

    from distilora.data.loading import load_splits
    from distilora.data.tokenize import load_fast_tokenizer, pad_token_id
    from distilora.memory import reset_peak_rss
    from distilora.training.few_shot import few_shot_applies, training_settings
    from distilora.training.loop import TrainSet, fit
    from distilora.training.losses import class_weights
    from distilora.training.preflight import check_config, check_run, check_tokenizer
    from distilora.training.tracking import check_trackers

    reset_peak_rss()  # this run's own peak, also when a pipeline trained another model in this process before
    final = config.run_dir if config.run_dir.name else config.run_dir.resolve()
    partial = partial_path(final)
    accelerator = make_accelerator(config, RunFolder(partial).logs_dir)
    main = accelerator.is_main_process
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    _check_folder(config, final, partial, resume=resume, overwrite=overwrite)
    # bad data, a bad backbone or a bad layer spec fail here, before anything is written
    check_config(config)
    check_trackers(config)
    splits = load_splits(config.data, config.distill)
    space = splits.label_space
    check_run(config, splits)
    few_shot = few_shot_applies(config, splits)
    settings = training_settings(config, splits, few_shot)
    built = build_run_model(settings, space)
    tokenizer_dir = built.backbone_path  # a student keeps its own tokenizer; soft targets are per text
    tokenizer = load_fast_tokenizer(tokenizer_dir)
    check_tokenizer(tokenizer, tokenizer_dir, splits.train.texts)
    _open_folder(config, partial, accelerator, resume=resume)
    if main:
        _announce(built, settings, accelerator)

    pad_id = pad_token_id(Path(tokenizer_dir), tokenizer)
    encoded = {name: _encode(tokenizer, split, config.data.max_length) for name, split in
               (("train", splits.train), ("validation", splits.validation), ("test", splits.test))}
    train_set = _training_set(config, splits, encoded["train"], tokenizer)
    weights = class_weights(config.train.class_weights, splits.train.labels, space.num_labels, space.is_multilabel)
    started = time.perf_counter()
    module = _training_module(built, splits, encoded["train"], pad_id, config, few_shot=few_shot, resume=resume,
                              show_progress=main)
    preparation_seconds = time.perf_counter() - started
    if main and (few_shot or not splits.validation_held_out):
        accelerator.print(_recipe_note(settings, splits, few_shot))

    result = fit(settings, module, task=space.task, label_names=list(space.names), train=train_set,
                 val=TrainSet(encoded["validation"], splits.validation.labels), work_dir=partial,
                 accelerator=accelerator, resume=resume, pad_id=pad_id, class_weights=weights)

    if main:
        decision = _evaluate_splits(RunFolder(partial), module, splits, encoded, settings, pad_id, accelerator,
                                    result.steps)
        _save_model(built, module, settings, partial)
        info = _run_info(config, settings, built, splits, result, decision, few_shot=few_shot,
                         seconds=preparation_seconds + result.train_seconds, accelerator=accelerator)
        RunFolder(partial).write_info(info)
        _complete(RunFolder(partial), final, config, accelerator)
    accelerator.wait_for_everyone()
    return final


def _open_folder(config: RunConfig, partial: Path, accelerator: "Accelerator", *, resume: bool) -> None:
    """Create (or, resuming, keep) RUN.partial with the config in it, once all checks passed; then start trackers."""
    from distilora.training.tracking import start_tracking

    if accelerator.is_main_process:
        if partial.exists() and not resume:
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RunFolder(partial).config_yaml, config.to_yaml())
    accelerator.wait_for_everyone()
    start_tracking(accelerator, config)


def _announce(built: "BuiltModel", settings: RunConfig, accelerator: "Accelerator") -> None:
    for note in built.notes:
        accelerator.print(note)
    accelerator.print(f"method {settings.model.method}: trainable params {built.trainable_params:,} || all params "
                      f"{built.total_params:,} || trainable% {100 * built.trainable_params / built.total_params:.2f}")


def _run_info(config: RunConfig, settings: RunConfig, built: "BuiltModel", splits: "DataSplits", result: Any,
              decision: dict[str, Any], *, few_shot: bool, seconds: float, accelerator: "Accelerator") -> RunInfo:
    """run.json: what was trained, the decision rule chosen on validation, and how long and how big it ran."""
    from distilora.memory import peak_rss_mb

    space = splits.label_space
    return RunInfo(task=space.task, labels=list(space.names), method=settings.model.method,
                   backbone=config.model.backbone, max_length=config.data.max_length,
                   text_pair=splits.train.pairs is not None, **decision, aux_names=splits.aux_names,
                   student_layers=built.student_layers, trainable_params=built.trainable_params,
                   total_params=built.total_params, train_seconds=round(seconds, 2),
                   train_samples_per_second=round(result.samples_per_second, 2), peak_rss_mb=peak_rss_mb(),
                   best_step=result.best_step, best_metric=result.best_metrics, few_shot=few_shot,
                   validation_held_out=splits.validation_held_out, processes=accelerator.num_processes,
                   precision=accelerator.mixed_precision, created=now_iso())


def _training_module(built: "BuiltModel", splits: "DataSplits", encoded_train: Any, pad_id: int, config: RunConfig,
                     *, few_shot: bool, resume: bool, show_progress: bool) -> Any:
    """The classifier (plus any auxiliary score head) as one training module, its head started where the task
    needs it: multi-label heads at the label priors, few-shot heads by the recipe's contrastive pairs and warm start."""
    from distilora.training.few_shot import prepare_few_shot
    from distilora.training.head_init import start_head_at_priors
    from distilora.training.loop import make_train_module

    aux_head = None
    if splits.aux_names:
        from distilora.modeling.aux_head import AuxHead

        aux_head = AuxHead(built.model.config.hidden_size, splits.aux_names)
    module = make_train_module(built.model, aux_head)
    if splits.label_space.is_multilabel and not resume:
        start_head_at_priors(module, splits.train.labels)
    if few_shot:
        prepare_few_shot(module, encoded_train, splits.train.labels, pad_id, config.eval.batch_size, config.train.seed,
                         show_progress=show_progress)
    return module


def _evaluate_splits(folder: RunFolder, module: Any, splits: "DataSplits", encoded: dict[str, Any],
                     settings: RunConfig, pad_id: int, accelerator: "Accelerator",
                     steps: int) -> dict[str, Any]:
    """With the kept weights: the decision rule fitted on validation, then metrics and predictions of every split
    and the data summary written into the folder. Returns the rule: temperature, thresholds, calibration note."""
    from distilora.data.summary import summarize_splits
    from distilora.evaluation.decision import fit_decision
    from distilora.evaluation.metrics import evaluate_logits
    from distilora.evaluation.uncertainty import with_intervals
    from distilora.training.checkpoint import BEST_WEIGHTS, load_trainable_state
    from distilora.training.loop import predict_logits
    from distilora.training.tracking import log_split_metrics

    space = splits.label_space
    best = folder.checkpoints_dir / BEST_WEIGHTS
    if best.is_file():
        load_trainable_state(module, best)
    logits = {name: predict_logits(module, enc, settings.eval.batch_size, pad_id, progress=f"evaluate {name}")
              for name, enc in encoded.items() if enc is not None and name != "train"}
    temperature, thresholds, calibration = fit_decision(space.task, logits["validation"], splits.validation.labels,
                                                        settings.eval)
    for name, split_logits in logits.items():
        split = getattr(splits, name)
        metrics = with_intervals(evaluate_logits(space.task, split_logits, split.labels, list(space.names),
                                                 temperature, thresholds), split_logits, split.labels)
        folder.write_metrics(name, metrics)
        log_split_metrics(accelerator, name, metrics, steps)
        folder.write_predictions(name, split.rows, split.texts, split.pairs, split.labels, split_logits)
    write_json_atomic(folder.data_summary_json, summarize_splits(splits))
    return dict(temperature=temperature, thresholds=thresholds, calibration=calibration)


def _complete(folder: RunFolder, final: Path, config: RunConfig, accelerator: "Accelerator") -> None:
    """Report and model cards, checkpoints dropped, trackers closed, then the one rename that makes the run exist."""
    from distilora.reporting.model_card import write_model_cards
    from distilora.training.tracking import finish_tracking

    if config.eval.report:
        from distilora.reporting.report import write_report

        write_report(folder.path)
    write_model_cards(folder.path)
    shutil.rmtree(folder.checkpoints_dir, ignore_errors=True)
    finish_tracking(accelerator)  # trackers flush and close their files before the folder is renamed
    replace_dir_atomic(folder.path, final)


def _recipe_note(settings: RunConfig, splits: "DataSplits", few_shot: bool) -> str:
    parts = []
    if few_shot:
        parts.append(f"few-shot recipe ({len(splits.train)} training texts): method {settings.model.method}, "
                     f"{settings.model.pooling} pooling, contrastive pairs (single-label), head warm-started by "
                     f"logistic regression, {settings.train.epochs:g} epochs")
    if not splits.validation_held_out:
        parts.append("nothing held out (data.validation_fraction 0): the lowest-training-loss step is kept, with "
                     "0.5 / argmax decisions and no temperature")
    return "; ".join(parts)
