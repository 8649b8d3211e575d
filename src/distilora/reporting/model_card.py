"""The model card: README.md in the Hugging Face format (YAML front matter + prose) for a run folder and its model/.

It reads the run folder only, so `distilora report RUN` writes it again at any time. What it says: data and label
counts, method and hyper-parameters, metrics per split (and which split chose the checkpoint, threshold and
temperature), the decision rule and how to apply it, intended use and limits, and how to load the model with
distilora, transformers and peft.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from distilora.evaluation.metrics import HEADLINE_METRICS
from distilora.evaluation.uncertainty import interval_text
from distilora.runfolder import RunFolder, RunInfo, atomic_write_text



def front_matter(info: RunInfo, config: dict[str, Any], metrics: dict[str, dict[str, Any]],
                 merged: bool = False) -> dict[str, Any]:
    from distilora.modeling.backbone import portable_backbone_name

    tags = ["distilora", "text-classification", info.method]
    if info.student_layers is not None or (config.get("distill") or {}).get("teacher"):
        tags.append("knowledge-distillation")
    data = config.get("data") or {}
    datasets = [Path(p).name for p in (data.get("train"), data.get("validation"), data.get("test")) if p]
    return {"library_name": "peft" if info.method == "lora" and not merged else "transformers",
            "pipeline_tag": "text-classification", "base_model": portable_backbone_name(info.backbone),
            "tags": tags, "datasets": datasets or ["bundled demo reviews"],
            "metrics": sorted({m for split in metrics.values() for m in HEADLINE_METRICS if split.get(m) is not None})}


def model_card(run_dir: str | Path, merged: bool = False) -> str:
    """The card of a run (``merged``: of its merged/ folder, plain transformers weights)."""
    folder = RunFolder(run_dir)
    info = folder.info()
    config = yaml.safe_load(folder.config_yaml.read_text(encoding="utf-8")) if folder.config_yaml.is_file() else {}
    splits = [p.stem for p in sorted(folder.metrics_dir.glob("*.json"))]
    metrics = {split: folder.metrics(split) or {} for split in splits}
    meta = yaml.safe_dump(front_matter(info, config, metrics, merged), sort_keys=False, allow_unicode=True)
    parts = [f"---\n{meta}---\n", _summary(folder, info), _data(folder), _training(info, config),
             _metrics_table(info, metrics) + _intervals(folder), _decision(info), _use_and_limits(info),
             _loading(folder, info, merged)]
    return "\n".join(parts)


def write_model_cards(run_dir: str | Path) -> list[Path]:
    """RUN/README.md, and the same card in RUN/model/ (replacing PEFT's blank template) and RUN/merged/."""
    folder = RunFolder(run_dir)
    card = model_card(folder.path)
    targets = [folder.card_md, folder.model_dir / "README.md"]
    for path in targets:
        atomic_write_text(path, card)
    if folder.merged_dir.is_dir():
        targets.append(folder.merged_dir / "README.md")
        atomic_write_text(targets[-1], model_card(folder.path, merged=True))
    return targets


def _summary(folder: RunFolder, info: RunInfo) -> str:
    kind = {"binary": "Binary", "multiclass": "Multi-class", "multilabel": "Multi-label"}[info.task]
    return (f"# {folder.run_name}\n\n{kind} text classifier over {len(info.labels)} labels ({', '.join(info.labels)}),"
            f" trained with [distilora](https://pypi.org/project/distilora/): {info.method} on `{info.backbone}`"
            f"{f', keeping layers {info.student_layers}' if info.student_layers is not None else ''}.\n")


def _data(folder: RunFolder) -> str:
    if not folder.data_summary_json.is_file():
        return ""
    summary = json.loads(folder.data_summary_json.read_text(encoding="utf-8"))
    lines = ["## Data\n", "| split | rows | source | texts per label |", "|---|---|---|---|"]
    for name, split in summary["splits"].items():
        counts = split.get("class_counts")
        shown = ", ".join(f"{k}: {v:,}" for k, v in counts.items()) if counts else "unlabelled (teacher targets only)"
        lines.append(f"| {name} | {split['rows']:,} | `{Path(split['source']).name}` | {shown} |")
    return "\n".join(lines) + "\n"


def _training(info: RunInfo, config: dict[str, Any]) -> str:
    train, peft, distill = config.get("train") or {}, config.get("peft") or {}, config.get("distill") or {}
    rows = [("method", info.method), ("epochs", train.get("epochs")), ("batch size", train.get("batch_size")),
            ("learning rate", train.get("lr") or "method default"), ("precision", train.get("precision")),
            ("max length (tokens)", info.max_length), ("trainable / total parameters",
                                                       f"{info.trainable_params:,} / {info.total_params:,}"
                                                       if info.trainable_params else None),
            ("training seconds", info.train_seconds), ("best step (by validation)", info.best_step)]
    if info.method == "lora":
        rows += [("LoRA rank / alpha / dropout", f"{peft.get('r')} / {peft.get('alpha')} / {peft.get('dropout')}")]
    if distill.get("teacher"):
        rows += [("teacher", f"`{Path(distill['teacher']).name}`, alpha {distill.get('alpha')}, temperature "
                             f"{distill.get('temperature')}")]
    if distill.get("ensemble"):
        rows += [("teacher ensemble", f"soft targets averaged over {len(distill['ensemble']) + 1} teachers: the "
                  f"teacher and {', '.join(f'`{Path(run).name}`' for run in distill['ensemble'])}")]
    if distill.get("fold_teachers"):
        rows += [("teacher targets on training texts", f"out of fold: {len(distill['fold_teachers'])} fold teachers "
                  "trained like the teacher, each scoring the texts (and their copies) it never trained on")]
    lines = ["## Training\n", "| setting | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows if value is not None]
    return "\n".join(lines) + "\n\nThe full resolved config is `config.yaml` in the run folder.\n"


def _metrics_table(info: RunInfo, metrics: dict[str, dict[str, Any]]) -> str:
    shown = [m for m in HEADLINE_METRICS if any(split.get(m) is not None for split in metrics.values())]
    lines = ["## Metrics\n", "| split | texts | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for split, values in metrics.items():
        cells = [f"{values[m]:.4f}" if isinstance(values.get(m), float) else "" for m in shown]
        lines.append(f"| {split} | {values.get('n', '')} | " + " | ".join(cells) + " |")
    note = ("\n**validation** chose the checkpoint, the decision threshold(s) and the temperature, so its figures are "
            "optimistic; **test** (when present) was never seen before the final evaluation; `eval-*` rows are "
            "`distilora eval` runs on other files.\n")
    return "\n".join(lines) + "\n" + note


def _intervals(folder: RunFolder) -> str:
    """How far the test figures can be trusted: a figure from a few hundred texts moves by points."""
    ranges = interval_text(folder.metrics("test"))
    return f"\n95% bootstrap intervals on **test** (resampling its texts): {ranges}.\n" if ranges else ""


def _decision(info: RunInfo) -> str:
    squash = "sigmoid(logits / T) per label" if info.task == "multilabel" else "softmax(logits / T)"
    rule = {"binary": f"predict `{info.labels[-1]}` when its probability >= {info.thresholds[0]:.4f}"
            if info.thresholds else "argmax",
            "multiclass": "the label with the highest probability",
            "multilabel": "every label whose probability reaches its threshold: "
                          + ", ".join(f"{n} {t:.3f}" for n, t in zip(info.labels, info.thresholds or []))}[info.task]
    kept = info.calibration.get("why") if info.calibration else None
    return (f"## Decision rule\n\nProbabilities are {squash} with temperature T = {info.temperature:.4f}"
            f"{f' ({kept})' if kept else ''}; the decision: {rule}. Both are fitted on validation and stored in "
            f"`run.json` (`temperature`, `thresholds`) and, for merged folders, in `config.json` "
            f"(`distilora_temperature`, `distilora_thresholds`). distilora applies them; plain transformers gives raw "
            f"logits, so apply them yourself.\n")


def _use_and_limits(info: RunInfo) -> str:
    return ("## Intended use and limits\n\nMeant for texts like the training data above, in its language and "
            f"domain, truncated at {info.max_length} tokens. Its labels are those of its training set and carry its "
            "annotators' biases; check it on your own data (`distilora eval RUN --data FILE`) before using it for "
            "decisions about people, and keep a person in the loop for moderation.\n")


def _loading(folder: RunFolder, info: RunInfo, merged: bool) -> str:
    weights = f"{folder.run_name}/{'merged' if merged else 'model'}"
    peft = _peft_loading(folder, info) if info.method == "lora" and not merged else (
        f"```python\nfrom transformers import pipeline\nclf = pipeline(\"text-classification\", "
        f"model=\"{weights}\", truncation=True, max_length={info.max_length})\n```\n")
    hub = ("After `distilora push RUN REPO_ID` the repository holds this run folder: "
           "`Classifier.load(huggingface_hub.snapshot_download(REPO_ID))` loads it on any machine, and the "
           "transformers / PEFT calls below take `REPO_ID` with `subfolder=\"model\"`.\n\n")
    return (f"## How to load\n\n```python\nfrom distilora import Classifier\nclf = Classifier.load(\"{folder.run_name}\")"
            f"\nclf.predict([\"a text\"])\n```\n\n{hub}{peft}")


def _peft_loading(folder: RunFolder, info: RunInfo) -> str:
    """Plain PEFT: the adapter's config records only its base, so the classes are passed in; a base that exists
    nowhere else (a layer-dropped student, an added pooling layer) is RUN/base, whose config has them already."""
    from distilora.modeling.backbone import portable_backbone_name

    name = folder.run_name
    if folder.base_dir.is_dir():
        return (f"```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForSequenceClassification\n"
                f"base = AutoModelForSequenceClassification.from_pretrained(\"{name}/base\")\n"
                f"model = PeftModel.from_pretrained(base, \"{name}/model\")\n```\n\nThe adapter sits on `base/`, "
                f"this run's own base model ({info.backbone} with its layers changed), saved beside it.\n")
    problem = ', problem_type="multi_label_classification"' if info.task == "multilabel" else ""
    id2label = {i: label for i, label in enumerate(info.labels)}
    label2id = {label: i for i, label in enumerate(info.labels)}
    return (f"```python\nfrom peft import AutoPeftModelForSequenceClassification\nmodel = "
            f"AutoPeftModelForSequenceClassification.from_pretrained(\n    \"{name}/model\", "
            f"num_labels={len(info.labels)}, id2label={id2label!r},\n    label2id={label2id!r}{problem})\n```\n\n"
            f"An adapter's config records only its base model, so the classes are passed in as above. The adapter sits "
            f"on `{portable_backbone_name(info.backbone)}`; where that is a local folder on your machine, edit "
            f"`base_model_name_or_path` in `adapter_config.json` to its path.\n")
