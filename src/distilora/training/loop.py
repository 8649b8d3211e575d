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
from distilora.data.batching import inference_batches, pad_batch, split_by_tokens, training_batches
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
    fitting = _Fitting(cfg, task, label_names, train, val, work_dir, accelerator, pad_id)
    fitting.start(module, resume, class_weights)
    fitting.run()
    seconds = fitting.progress["train_seconds"]
    return FitResult(steps=fitting.progress["step"], best_step=fitting.progress["best_step"],
                     best_metrics=fitting.progress["best_metrics"], train_seconds=seconds,
                     samples_per_second=fitting.progress["samples"] / max(seconds, 1e-9), history=fitting.history)


class _Fitting:
    """One fit() call: its schedule, the progress a checkpoint saves (so a resumed run continues exactly), and the
    three things a step can do: learn, evaluate, save."""

    def __init__(self, cfg: RunConfig, task: str, label_names: list[str], train: TrainSet, val: TrainSet,
                 work_dir: Path, accelerator: "Accelerator", pad_id: int):
        from distilora.evaluation.metrics import primary_metric

        self.cfg, self.tc, self.task, self.label_names = cfg, cfg.train, task, label_names
        self.multilabel = task == "multilabel"
        self.train, self.val, self.accelerator, self.pad_id = train, val, accelerator, pad_id
        self.rank, self.world, self.main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
        self.checkpoints, self.history_path = work_dir / "checkpoints", work_dir / "history.jsonl"
        self.metric = primary_metric(task) if self.tc.metric == "auto" else self.tc.metric
        self.steps_per_epoch = max(1, math.ceil(len(self._batches(0)) / self.tc.grad_accum))
        self.total_steps = self.tc.max_steps or max(1, math.ceil(self.tc.epochs * self.steps_per_epoch))
        self.progress: dict[str, Any] = {
            "step": 0, "epoch": 0, "batch": 0, "best_value": None, "best_step": None, "best_metrics": None,
            "bad_evals": 0, "train_seconds": 0.0, "samples": 0, "loss_sum": 0.0, "loss_count": 0,
            "stopped_early": False}

    def _batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches (seeded, so a resumed run sees the same ones); each rank gets a slice of every one."""
        return [b for b in training_batches(self.train.encoded.lengths, self.tc.batch_size, seed=self.tc.seed,
                                            epoch=epoch, group_by_length=self.tc.group_by_length) if len(b) >= self.world]

    def start(self, module: "torch.nn.Module", resume: bool, class_weights: np.ndarray | None) -> None:
        """Optimizer and schedule, restored from the last checkpoint when resuming; then Accelerate's wrappers."""
        import torch

        optimizer = _optimizer(module, self.cfg.learning_rate(), self.tc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(self.tc.scheduler, int(self.tc.warmup_ratio * self.total_steps), self.total_steps))
        restored = load_checkpoint(self.checkpoints, module=module, optimizer=optimizer, scheduler=self.scheduler,
                                   rank=self.rank, world=self.world) if resume else None
        if restored is not None:
            self.progress = restored
            if self.main:
                self.accelerator.print(f"resuming from step {self.progress['step']} of {self.total_steps}")
        else:
            torch.manual_seed(self.tc.seed + self.rank)
        self.history = [h for h in _read_history(self.history_path) if h["step"] <= self.progress["step"]]
        if self.main:
            _write_history(self.history_path, self.history)
        self.model, self.optimizer = self.accelerator.prepare(module, optimizer)
        self.weights = None if class_weights is None else torch.tensor(class_weights, device=self.accelerator.device)
        self.bar = progress_bar(self.total_steps, initial=self.progress["step"], enabled=self.main, desc="train",
                                unit="step")

    def run(self) -> None:
        """Steps until the schedule ends or early stopping; evaluation and checkpoints fall where the config says."""
        tc, progress = self.tc, self.progress
        while progress["step"] < self.total_steps and not progress["stopped_early"]:
            batches = self._batches(progress["epoch"])
            for start in range(progress["batch"], len(batches), tc.grad_accum):
                group = batches[start:start + tc.grad_accum]
                epoch_done = start + tc.grad_accum >= len(batches)
                self._learn(group)
                progress["epoch"], progress["batch"] = ((progress["epoch"] + 1, 0) if epoch_done
                                                        else (progress["epoch"], start + tc.grad_accum))
                last = progress["step"] >= self.total_steps
                due = (epoch_done if tc.eval_every == "epoch" else progress["step"] % tc.eval_every == 0) or last
                if due:
                    progress["stopped_early"] = self._evaluate()
                if due or progress["step"] % tc.checkpoint_every == 0:
                    self._save_checkpoint()
                if last or progress["stopped_early"]:
                    break
        self.bar.close()

    def _learn(self, group: list[np.ndarray]) -> None:
        """One optimizer step over a group of grad_accum batches (gradients synchronised on the last one); a batch
        over train.max_batch_tokens runs as micro-batches, each loss weighted by its share of the batch's rows."""
        tick, step_loss = time.perf_counter(), 0.0
        self.model.train()
        pieces = [(part, len(part) / len(rows)) for rows in (indices[self.rank::self.world] for indices in group)
                  for part in split_by_tokens(rows, self.train.encoded.lengths, self.tc.max_batch_tokens)]
        for i, (rows, share) in enumerate(pieces):
            batch = _tensors(self.train, rows, self.pad_id, self.multilabel, self.accelerator.device)
            sync = nullcontext() if i == len(pieces) - 1 else self.accelerator.no_sync(self.model)
            with sync, self.accelerator.autocast():
                logits, aux_logits = self.model(batch["input_ids"], batch["attention_mask"],
                                                batch.get("token_type_ids"))
                loss = batch_loss(logits.float(), aux_logits, batch, self.cfg, self.multilabel, self.weights)
                loss = loss * share / len(group)
                self.accelerator.backward(loss)
            step_loss += loss.item()
        if self.tc.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.tc.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

        progress = self.progress
        progress["step"] += 1
        progress["samples"] += sum(len(b) for b in group)
        progress["train_seconds"] += time.perf_counter() - tick
        progress["loss_sum"] += step_loss
        progress["loss_count"] += 1
        samples_s = progress["samples"] / progress["train_seconds"]
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{step_loss:.4f}", samples_s=f"{samples_s:.1f}", refresh=False)
        self.accelerator.log({"train/loss": step_loss, "train/lr": self.scheduler.get_last_lr()[0],
                              "train/samples_per_s": samples_s}, step=progress["step"])

    def _evaluate(self) -> bool:
        """Score the validation split, keep the best weights so far; True when early stopping says stop."""
        import torch

        from distilora.evaluation.metrics import evaluate_logits
        from distilora.training.tracking import log_split_metrics

        progress, metric = self.progress, self.metric
        logits = predict_logits(self.accelerator.unwrap_model(self.model), self.val.encoded, self.cfg.eval.batch_size,
                                self.pad_id, self.accelerator)
        targets = torch.from_numpy(self.val.labels.astype(np.float32 if self.multilabel else np.int64))
        with torch.no_grad():
            val_loss = classification_loss(torch.from_numpy(logits), targets, multilabel=self.multilabel,
                                           cfg=self.tc).item()
        metrics = {**evaluate_logits(self.task, logits, self.val.labels, self.label_names), "loss": val_loss}
        record = {"step": progress["step"], "epoch": round(progress["step"] / self.steps_per_epoch, 4),
                  "train_loss": progress["loss_sum"] / max(1, progress["loss_count"]),
                  "lr": self.scheduler.get_last_lr()[0], "seconds": round(progress["train_seconds"], 3),
                  **{f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)}}
        progress["loss_sum"], progress["loss_count"] = 0.0, 0
        self.history.append(record)
        log_split_metrics(self.accelerator, "val", {**metrics, "epoch": record["epoch"]}, progress["step"])
        if _is_better(metric, metrics[metric], progress["best_value"]):
            progress.update(best_value=metrics[metric], best_step=progress["step"], bad_evals=0,
                            best_metrics={k: v for k, v in record.items() if k.startswith("val_")})
            if self.main:
                save_best_weights(self.accelerator.unwrap_model(self.model), self.checkpoints)
        else:
            progress["bad_evals"] += 1
        if self.main:
            _write_history(self.history_path, self.history)
            self.bar.write(f"step {record['step']}: val_loss {val_loss:.4f}  val_{metric} {metrics[metric]:.4f}")
        patience = self.tc.early_stopping_patience
        return patience is not None and progress["bad_evals"] >= patience

    def _save_checkpoint(self) -> None:
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)  # Accelerate's wrapper holds the real one
        save_checkpoint(self.checkpoints, module=self.accelerator.unwrap_model(self.model), optimizer=optimizer,
                        scheduler=self.scheduler, progress=self.progress, rank=self.rank, world=self.world,
                        gather=self.accelerator.gather, barrier=self.accelerator.wait_for_everyone)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    from distilora.runfolder import write_jsonl_atomic

    write_jsonl_atomic(path, history)
