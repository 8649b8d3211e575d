"""The training loop, readable top to bottom: batches -> loss -> AdamW step -> evaluate -> checkpoint.

It runs on Accelerate, so a distributed launch (`accelerate launch --multi_gpu`, or torchrun; on one machine or
several, with or without GPUs) gives data-parallel training with no code change: every global batch is split
across processes and gradients are averaged. Distillation adds terms to the loss
(soft targets, auxiliary scores); it is not a different loop.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilora.config import RunConfig
from distilora.data.batching import inference_batches, pad_batch, training_batches
from distilora.data.tokenize import Encoded
from distilora.progress import progress_bar
from distilora.training.checkpoint import load_checkpoint, save_best_weights, save_checkpoint
from distilora.training.losses import classification_loss

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator


@dataclass
class TrainSet:
    """Tokenised texts with their targets: gold labels, and optionally teacher logits and teacher scores."""

    encoded: Encoded
    labels: np.ndarray | None
    teacher_logits: np.ndarray | None = None
    aux: np.ndarray | None = None
    labelled: np.ndarray | None = None  # bool [n]; False = an unlabelled text that trains on soft targets only


@dataclass
class FitResult:
    steps: int
    best_step: int | None
    best_metrics: dict[str, float] | None
    train_seconds: float
    samples_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)


def make_train_module(classifier: "torch.nn.Module", aux_head: "torch.nn.Module | None" = None) -> "torch.nn.Module":
    """One module holding the classifier and the optional auxiliary head, so DDP and checkpoints see both."""
    import inspect

    import torch

    base = classifier.get_base_model() if hasattr(classifier, "get_base_model") else classifier
    takes_token_types = "token_type_ids" in inspect.signature(base.forward).parameters

    class TrainModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = classifier
            self.aux_head = aux_head

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if takes_token_types and token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            out = self.classifier(**inputs, output_hidden_states=self.aux_head is not None)
            aux = self.aux_head(out.hidden_states[-1]) if self.aux_head is not None else None
            return out.logits, aux

    return TrainModule()


def lr_lambda(kind: str, warmup: int, total: int):
    """Linear warm-up, then linear / cosine decay to zero, or constant."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)
    return factor


def _optimizer(module: "torch.nn.Module", lr: float, weight_decay: float) -> "torch.optim.Optimizer":
    import torch

    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _tensors(data: TrainSet, indices: np.ndarray, pad_id: int, multilabel: bool, device: Any) -> dict[str, Any]:
    import torch

    batch = {k: torch.from_numpy(v).to(device) for k, v in pad_batch(data.encoded, indices, pad_id).items()}
    if data.labels is not None:
        labels = data.labels[indices]
        batch["labels"] = torch.from_numpy(labels.astype(np.float32 if multilabel else np.int64)).to(device)
    if data.teacher_logits is not None:
        batch["teacher_logits"] = torch.from_numpy(data.teacher_logits[indices].astype(np.float32)).to(device)
    if data.aux is not None:
        batch["aux"] = torch.from_numpy(data.aux[indices].astype(np.float32)).to(device)
    if data.labelled is not None:
        batch["labelled"] = torch.from_numpy(data.labelled[indices]).to(device)
    return batch


def batch_loss(logits, aux_logits, batch: dict[str, Any], cfg: RunConfig, multilabel: bool, weights) -> "torch.Tensor":
    """Hard-label loss, blended with soft targets (alpha, T) and auxiliary teacher scores (sigma) when present."""
    task = "multilabel" if multilabel else "single"
    loss = _hard_label_loss(logits, batch, cfg, multilabel, weights)
    if "teacher_logits" in batch:
        from distilora.distill.losses import blend, soft_target_loss

        soft = soft_target_loss(logits, batch["teacher_logits"], cfg.distill.temperature, task)
        loss = blend(loss, soft, cfg.distill.alpha)
    if aux_logits is not None and "aux" in batch:
        from distilora.distill.losses import aux_score_loss

        loss = cfg.distill.sigma * loss + (1 - cfg.distill.sigma) * aux_score_loss(aux_logits, batch["aux"])
    return loss


def _hard_label_loss(logits, batch: dict[str, Any], cfg: RunConfig, multilabel: bool, weights) -> "torch.Tensor":
    """The gold-label loss over the labelled rows, scaled by their share of the batch so each row weighs the same
    whether or not unlabelled texts are mixed in; a batch of unlabelled texts only gives a zero in the graph."""
    mask = batch.get("labelled")
    if mask is None:
        return classification_loss(logits, batch["labels"], multilabel=multilabel, cfg=cfg.train, weights=weights)
    if not bool(mask.any()):
        return logits.sum() * 0.0
    hard = classification_loss(logits[mask], batch["labels"][mask], multilabel=multilabel, cfg=cfg.train,
                               weights=weights)
    return hard * mask.float().mean()


def predict_logits(module: "torch.nn.Module", encoded: Encoded, batch_size: int, pad_id: int,
                   accelerator: "Accelerator | None" = None, progress: str | None = None) -> np.ndarray:
    """Logits for every row, in row order; under several processes each computes a share and all gather.

    ``progress`` names a progress bar (in texts) for passes long enough to want one, such as a large test split.
    """
    import torch

    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = next(module.parameters()).device
    batches = inference_batches(encoded.lengths, batch_size)[rank::world]
    mine: list[tuple[np.ndarray, np.ndarray]] = []
    module.eval()
    with torch.inference_mode(), progress_bar(sum(len(b) for b in batches), enabled=progress is not None and rank == 0,
                                              desc=progress, unit="text") as bar:
        for indices in batches:
            inputs = {k: torch.from_numpy(v).to(device) for k, v in pad_batch(encoded, indices, pad_id).items()}
            logits, _ = module(**inputs)
            mine.append((indices, logits.float().cpu().numpy()))
            bar.update(len(indices))
    if world > 1:
        from accelerate.utils import gather_object

        mine = gather_object(mine)
    width = mine[0][1].shape[1]
    out = np.zeros((len(encoded.lengths), width), dtype=np.float32)
    for indices, logits in mine:
        out[indices] = logits
    return out


def _is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


def fit(cfg: RunConfig, module: "torch.nn.Module", *, task: str, label_names: list[str], train: TrainSet,
        val: TrainSet, work_dir: Path, accelerator: "Accelerator", resume: bool, pad_id: int,
        class_weights: np.ndarray | None) -> FitResult:
    """Train ``module`` in place; the best weights (by the validation metric) end in work_dir/checkpoints."""
    import torch

    from distilora.evaluation.metrics import evaluate_logits, primary_metric
    from distilora.training.tracking import log_split_metrics

    tc = cfg.train
    multilabel = task == "multilabel"
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    checkpoints, history_path = work_dir / "checkpoints", work_dir / "history.jsonl"
    metric = primary_metric(task) if tc.metric == "auto" else tc.metric

    lengths = train.encoded.lengths
    batches_per_epoch = len([b for b in training_batches(lengths, tc.batch_size, seed=tc.seed, epoch=0,
                                                          group_by_length=tc.group_by_length) if len(b) >= world])
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / tc.grad_accum))
    total_steps = tc.max_steps or max(1, math.ceil(tc.epochs * steps_per_epoch))
    optimizer = _optimizer(module, cfg.learning_rate(), tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(tc.scheduler, int(tc.warmup_ratio * total_steps), total_steps))

    progress: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best_value": None, "best_step": None,
                                "best_metrics": None, "bad_evals": 0, "train_seconds": 0.0, "samples": 0,
                                "loss_sum": 0.0, "loss_count": 0, "stopped_early": False}
    restored = load_checkpoint(checkpoints, module=module, optimizer=optimizer, scheduler=scheduler,
                               rank=rank, world=world) if resume else None
    if restored is not None:
        progress = restored
        if main:
            accelerator.print(f"resuming from step {progress['step']} of {total_steps}")
    else:
        torch.manual_seed(tc.seed + rank)
    history = [h for h in _read_history(history_path) if h["step"] <= progress["step"]]
    if main:
        _write_history(history_path, history)

    model, optimizer = accelerator.prepare(module, optimizer)
    device = accelerator.device
    weights = torch.tensor(class_weights, device=device) if class_weights is not None else None
    bar = progress_bar(total_steps, initial=progress["step"], enabled=main, desc="train", unit="step")

    def evaluate_and_maybe_stop() -> bool:
        logits = predict_logits(accelerator.unwrap_model(model), val.encoded, cfg.eval.batch_size, pad_id, accelerator)
        with torch.no_grad():
            val_loss = classification_loss(torch.from_numpy(logits), torch.from_numpy(
                val.labels.astype(np.float32 if multilabel else np.int64)), multilabel=multilabel, cfg=tc).item()
        metrics = evaluate_logits(task, logits, val.labels, label_names)
        metrics["loss"] = val_loss
        record = {"step": progress["step"], "epoch": round(progress["step"] / steps_per_epoch, 4),
                  "train_loss": progress["loss_sum"] / max(1, progress["loss_count"]),
                  "lr": scheduler.get_last_lr()[0], "seconds": round(progress["train_seconds"], 3),
                  **{f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)}}
        progress["loss_sum"], progress["loss_count"] = 0.0, 0
        history.append(record)
        log_split_metrics(accelerator, "val", {**metrics, "epoch": record["epoch"]}, progress["step"])
        if _is_better(metric, metrics[metric], progress["best_value"]):
            progress.update(best_value=metrics[metric], best_step=progress["step"], bad_evals=0,
                            best_metrics={k: v for k, v in record.items() if k.startswith("val_")})
            if main:
                save_best_weights(accelerator.unwrap_model(model), checkpoints)
        else:
            progress["bad_evals"] += 1
        if main:
            _write_history(history_path, history)
            bar.write(f"step {record['step']}: val_loss {val_loss:.4f}  val_{metric} {metrics[metric]:.4f}")
        patience = tc.early_stopping_patience
        return patience is not None and progress["bad_evals"] >= patience

    while progress["step"] < total_steps and not progress["stopped_early"]:
        batches = [b for b in training_batches(lengths, tc.batch_size, seed=tc.seed, epoch=progress["epoch"],
                                               group_by_length=tc.group_by_length) if len(b) >= world]
        for start in range(progress["batch"], len(batches), tc.grad_accum):
            tick = time.perf_counter()
            model.train()
            group = batches[start:start + tc.grad_accum]
            step_loss = 0.0
            for i, indices in enumerate(group):
                batch = _tensors(train, indices[rank::world], pad_id, multilabel, device)
                sync = nullcontext() if i == len(group) - 1 else accelerator.no_sync(model)
                with sync, accelerator.autocast():
                    logits, aux_logits = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
                    loss = batch_loss(logits.float(), aux_logits, batch, cfg, multilabel, weights) / len(group)
                    accelerator.backward(loss)
                step_loss += loss.item()
            if tc.max_grad_norm is not None:
                accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            epoch_done = start + tc.grad_accum >= len(batches)
            progress["step"] += 1
            progress["samples"] += sum(len(b) for b in group)
            progress["train_seconds"] += time.perf_counter() - tick
            progress["loss_sum"] += step_loss
            progress["loss_count"] += 1
            progress["epoch"], progress["batch"] = (progress["epoch"] + 1, 0) if epoch_done else (progress["epoch"], start + tc.grad_accum)
            bar.update(1)
            samples_s = progress["samples"] / progress["train_seconds"]
            bar.set_postfix(loss=f"{step_loss:.4f}", samples_s=f"{samples_s:.1f}", refresh=False)
            accelerator.log({"train/loss": step_loss, "train/lr": scheduler.get_last_lr()[0],
                             "train/samples_per_s": samples_s}, step=progress["step"])

            last = progress["step"] >= total_steps
            due = (epoch_done if tc.eval_every == "epoch" else progress["step"] % tc.eval_every == 0) or last
            if due:
                progress["stopped_early"] = evaluate_and_maybe_stop()
            if due or progress["step"] % tc.checkpoint_every == 0:
                save_checkpoint(checkpoints, module=accelerator.unwrap_model(model), optimizer=optimizer.optimizer
                                if hasattr(optimizer, "optimizer") else optimizer, scheduler=scheduler,
                                progress=progress, rank=rank, world=world, gather=accelerator.gather,
                                barrier=accelerator.wait_for_everyone)
            if last or progress["stopped_early"]:
                break
    bar.close()
    seconds = progress["train_seconds"]
    return FitResult(steps=progress["step"], best_step=progress["best_step"], best_metrics=progress["best_metrics"],
                     train_seconds=seconds, samples_per_second=progress["samples"] / max(seconds, 1e-9),
                     history=history)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    from distilora.runfolder import write_jsonl_atomic

    write_jsonl_atomic(path, history)
