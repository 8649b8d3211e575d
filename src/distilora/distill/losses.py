"""Knowledge-distillation losses: soft targets from teacher logits, the hard/soft blend, and teacher-score targets.

Pure functions of tensors, so the training loop decides what to combine and these stay testable by hand.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SINGLE_LABEL_TASKS = ("single", "binary", "multiclass")


def soft_target_loss(student_logits: "torch.Tensor", teacher_logits: "torch.Tensor", temperature: float,
                     task: str) -> "torch.Tensor":
    """Match the teacher's softened outputs, scaled by T^2 so gradients keep their size as T changes.

    Single-label ('single', 'binary', 'multiclass'): T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged
    over rows. 'multilabel': each label is its own yes/no question, so T^2 * BCE(sigmoid(student/T),
    sigmoid(teacher/T)) averaged over rows and labels.
    """
    import torch.nn.functional as F

    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    student = student_logits / temperature
    teacher = teacher_logits.detach().to(student.dtype) / temperature
    if task == "multilabel":
        loss = F.binary_cross_entropy_with_logits(student, teacher.sigmoid())
    elif task in SINGLE_LABEL_TASKS:
        loss = F.kl_div(F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1), reduction="batchmean",
                        log_target=True)
    else:
        raise ValueError(f"unknown task {task!r}; expected 'multilabel' or one of {SINGLE_LABEL_TASKS}")
    return loss * temperature**2


def blend(hard_loss: "torch.Tensor", soft_loss: "torch.Tensor", alpha: float) -> "torch.Tensor":
    """alpha * hard + (1 - alpha) * soft: alpha = 1 trains on gold labels only, alpha = 0 on the teacher only."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha * hard_loss + (1 - alpha) * soft_loss


def aux_score_loss(aux_logits: "torch.Tensor", aux_targets: "torch.Tensor") -> "torch.Tensor":
    """BCE-with-logits against teacher scores in [0, 1], averaged over the finite targets only.

    Rows without teacher scores are NaN and count for nothing; a batch with no scores at all gives a zero that
    still belongs to the graph, so the backward pass and gradient accumulation run unchanged.
    """
    import torch
    import torch.nn.functional as F

    if aux_logits.shape != aux_targets.shape:
        raise ValueError(f"aux logits {tuple(aux_logits.shape)} and aux targets {tuple(aux_targets.shape)} differ in shape")
    known = torch.isfinite(aux_targets)
    if not bool(known.any()):
        return aux_logits.sum() * 0.0
    # NaN targets are replaced before the loss so their (masked-out) gradient is 0, not NaN.
    targets = torch.where(known, aux_targets, torch.zeros_like(aux_targets)).to(aux_logits.dtype)
    per_entry = F.binary_cross_entropy_with_logits(aux_logits, targets, reduction="none")
    return per_entry[known].mean()
