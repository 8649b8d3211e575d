"""The peer for a finished distilora run: plain Hugging Face Trainer + PEFT on exactly the run's data and settings.

A study's result is only half a comparison without the code a user would otherwise write. This script reads a
distilora run folder (its resolved `config.yaml` and `metrics/test.json`), rebuilds the very same train and test
splits through distilora's own loader (same seed, same sampling), trains LoRA with Trainer + PEFT using the run's
backbone, rank, alpha, dropout, learning rate, batch size, epochs, warm-up, weight decay, max length, seed and
the precision its steps ran in (run.json's; a bf16 config runs in fp32 on a CPU without bf16), and scores the same
test rows at the 0.5 threshold (argmax). The Trainer keeps its last model, as a user's script does; it has no
validation-picked checkpoint, threshold or temperature. Binary and multi-class runs.

    python bench/trainer_baseline.py RUN_FOLDER [--name RESULTS_NAME]

The distilora side is read back from the run folder, so its training time was measured when that run trained, on
this machine but not in the same process run as the peer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (peak_rss_mb, print_table, require_data, require_finished_run, trainer_clock,  # noqa: E402
                    write_results)

METRICS = ("accuracy", "f1", "macro_f1", "roc_auc", "pr_auc")


def test_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    predicted = probs.argmax(-1)
    out = {"accuracy": accuracy_score(labels, predicted), "macro_f1": f1_score(labels, predicted, average="macro")}
    if probs.shape[1] == 2:
        out.update(f1=f1_score(labels, predicted), roc_auc=roc_auc_score(labels, probs[:, 1]),
                   pr_auc=average_precision_score(labels, probs[:, 1]))
    return {k: float(v) for k, v in out.items()}


def run_trainer(run: Path) -> dict:
    """Train and score the Trainer + PEFT peer on the run's splits; returns its metrics and timings."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from distilora.config import load_config
    from distilora.data.loading import load_splits
    from distilora.modeling.backbone import resolve_backbone
    from distilora.modeling.build import head_modules_for, lora_target_modules

    cfg = load_config(run / "config.yaml")
    if cfg.model.method != "lora" or cfg.distill.teacher or (cfg.distill.aux_column and cfg.distill.sigma < 1):
        sys.exit(f"{run}: the peer covers plain LoRA runs (model.method: lora, no distillation; sigma 1 = label only)")
    splits = load_splits(cfg.data)
    if splits.label_space.is_multilabel or splits.test is None:
        sys.exit(f"{run}: the peer needs a single-label task with a test split")
    torch.manual_seed(cfg.train.seed)
    path = resolve_backbone(cfg.model.backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    classes = len(splits.label_space.names)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=classes)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=cfg.peft.r, lora_alpha=cfg.peft.alpha,
                                             lora_dropout=cfg.peft.dropout, use_rslora=cfg.peft.use_rslora,
                                             target_modules=lora_target_modules(model, cfg.peft.target_modules),
                                             modules_to_save=head_modules_for(model)))

    def dataset(split) -> Dataset:
        table = Dataset.from_dict({"text": split.texts, "label": split.labels.tolist()})
        return table.map(lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.data.max_length),
                         batched=True, remove_columns=["text"])

    train_ds, test_ds = dataset(splits.train), dataset(splits.test)

    clock = trainer_clock()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(Path("/tmp") / f"trainer-baseline-{run.name}"),
                               per_device_train_batch_size=cfg.train.batch_size, per_device_eval_batch_size=64,
                               gradient_accumulation_steps=cfg.train.grad_accum, num_train_epochs=cfg.train.epochs,
                               learning_rate=cfg.learning_rate(), warmup_steps=cfg.train.warmup_ratio,
                               weight_decay=cfg.train.weight_decay, lr_scheduler_type=cfg.train.scheduler,
                               max_grad_norm=cfg.train.max_grad_norm or 0.0, save_strategy="no", report_to=[],
                               use_cpu=not torch.cuda.is_available(), seed=cfg.train.seed, logging_steps=50,
                               bf16=ran_in_bf16(run, cfg.train.precision)),
        train_dataset=train_ds, data_collator=DataCollatorWithPadding(tokenizer), callbacks=[clock])
    trainer.train()
    logits = trainer.predict(test_ds).predictions
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), -1).numpy()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"side": "Trainer + PEFT", **test_metrics(splits.test.labels, probs), "train_seconds": clock.train_seconds,
            "samples_per_s": len(splits.train) * cfg.train.epochs / clock.train_seconds, "trainable": trainable,
            "train_rows": len(splits.train), "test_rows": len(splits.test), "peak_rss_mb": peak_rss_mb()}


def ran_in_bf16(run: Path, configured: str) -> bool:
    """Whether the run's steps ran in bf16 (older run.json files lack the field: then the configured precision)."""
    return json.loads((run / "run.json").read_text()).get("precision", configured) == "bf16"


def distilora_side(run: Path) -> dict:
    metrics = json.loads((run / "metrics" / "test.json").read_text())
    info = json.loads((run / "run.json").read_text())
    return {"side": "distilora", **{k: metrics.get(k) for k in METRICS}, "train_seconds": info["train_seconds"],
            "samples_per_s": info["train_samples_per_second"], "trainable": info["trainable_params"],
            "peak_rss_mb": info.get("peak_rss_mb")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished distilora LoRA run folder")
    parser.add_argument("--name", default=None, help="results file name under bench/results (default: none written)")
    args = parser.parse_args()
    require_finished_run(args.run)
    require_data()
    ours, peer = distilora_side(args.run), run_trainer(args.run)
    for key in METRICS:
        if ours.get(key) is not None and peer.get(key) is not None:
            ours[f"{key}_minus_peer"] = ours[key] - peer[key]
    ours["speed_vs_peer"] = ours["samples_per_s"] / peer["samples_per_s"]
    print_table([peer, ours], ["side", *METRICS, "train_seconds", "samples_per_s", "trainable"])
    print("distilora - peer: " + ", ".join(f"{k} {ours[f'{k}_minus_peer']:+.4f}" for k in METRICS
                                              if f"{k}_minus_peer" in ours)
          + f"; speed x{ours['speed_vs_peer']:.2f}")
    if args.name:
        print(f"wrote {write_results(args.name, {'run': str(args.run), 'rows': [peer, ours]})}")


if __name__ == "__main__":
    main()
