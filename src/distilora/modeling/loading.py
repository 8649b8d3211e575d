"""Load a finished run's model for inference: merged weights, full weights, or base + PEFT adapter (+ head)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from distilora.modeling.backbone import quiet_transformers, resolve_backbone
from distilora.runfolder import RunFolder, RunInfo

if TYPE_CHECKING:
    import torch


def load_run_model(run_dir: str | Path, *, merge: bool = True) -> tuple["torch.nn.Module", RunInfo]:
    """The trained classifier in eval mode. LoRA adapters are folded into the weights when ``merge`` (faster)."""
    from transformers import AutoModelForSequenceClassification

    folder = RunFolder(run_dir)
    info = folder.info()
    with quiet_transformers():
        if folder.merged_dir.is_dir() and merge:
            return AutoModelForSequenceClassification.from_pretrained(folder.merged_dir, use_safetensors=True).eval(), info
        if not folder.is_lora:
            return AutoModelForSequenceClassification.from_pretrained(folder.model_dir, use_safetensors=True).eval(), info
        from peft import PeftModel

        from distilora.data.labels import LabelSpace
        from distilora.modeling.build import load_classifier

        base_dir = folder.path / "base" if (folder.path / "base").is_dir() else resolve_backbone(info.backbone)
        base = load_classifier(str(base_dir), LabelSpace(tuple(info.labels), info.task))  # head replaced just below
        model = PeftModel.from_pretrained(base, folder.model_dir)
        return (model.merge_and_unload() if merge else model).eval(), info
