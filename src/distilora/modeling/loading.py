"""Load a finished run's model for inference: merged weights, full weights, or base + PEFT adapter (+ head).

Weights come only from safetensors files. A LoRA run's classification head lives in the adapter (PEFT's
``modules_to_save``); an adapter without one would silently give a random head, so it is refused instead.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from distilora.errors import RunFolderError
from distilora.modeling.backbone import quiet_transformers, resolve_backbone
from distilora.runfolder import RunFolder, RunInfo

if TYPE_CHECKING:
    import torch

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def load_run_model(run_dir: str | Path, *, merge: bool = True) -> tuple["torch.nn.Module", RunInfo]:
    """The trained classifier in eval mode. LoRA adapters are folded into the weights when ``merge`` (faster);
    RUN/merged, when present, is used as is (no PEFT import)."""
    folder = RunFolder(run_dir)
    info = folder.info()
    with quiet_transformers():
        if merge and folder.merged_dir.is_dir():
            return load_model_folder(folder.merged_dir), info
        if not folder.is_lora:
            return load_model_folder(folder.model_dir), info
        model = _load_adapter(folder, info)
        return (model.merge_and_unload() if merge else model).eval(), info


def check_weights(path: Path) -> None:
    """A safetensors file whose header and size agree, or a one-line error naming it (a truncated copy or a file
    overwritten by something else would otherwise surface as a stack trace deep inside the loader)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise RunFolderError(f"{path}: damaged weights file ({str(err).splitlines()[0]}); copy the run folder again "
                             f"from where it came, or retrain it") from None


def load_model_folder(model_dir: Path) -> "torch.nn.Module":
    """A plain save_pretrained classifier folder (full, head-only or merged weights), from safetensors only."""
    from transformers import AutoModelForSequenceClassification

    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        raise RunFolderError(f"{model_dir}: no *.safetensors weights; distilora loads only safetensors (save the model "
                             f"with save_pretrained(..., safe_serialization=True))")
    for path in weights:
        check_weights(path)
    try:
        return AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True).eval()
    except (OSError, ValueError) as err:
        raise RunFolderError(f"{model_dir}: cannot load the model ({str(err).splitlines()[0]})") from None


def _load_adapter(folder: RunFolder, info: RunInfo) -> "torch.nn.Module":
    from peft import PeftModel

    from distilora.data.labels import LabelSpace
    from distilora.modeling.build import load_classifier

    if not (folder.model_dir / ADAPTER_WEIGHTS).is_file():
        raise RunFolderError(f"{folder.model_dir}: no {ADAPTER_WEIGHTS}; distilora loads adapters only from safetensors")
    check_weights(folder.model_dir / ADAPTER_WEIGHTS)
    adapter_config = json.loads((folder.model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if not adapter_config.get("modules_to_save"):
        raise RunFolderError(f"{folder.model_dir / 'adapter_config.json'}: the adapter saves no classification head "
                             f"(modules_to_save is empty), so its head would be random; retrain with distilora")
    # distilled students have a layer-copied base that exists nowhere else, so training saved it in RUN/base
    base_dir = folder.base_dir if folder.base_dir.is_dir() else resolve_backbone(info.backbone)
    for path in Path(base_dir).glob("*.safetensors"):
        check_weights(path)
    base = load_classifier(str(base_dir), LabelSpace(tuple(info.labels), info.task))  # head comes from the adapter
    return PeftModel.from_pretrained(base, folder.model_dir)
