"""Resumable checkpoints in safetensors + JSON only (nothing is ever unpickled).

A checkpoint holds the trainable weights, the AdamW state, the scheduler position, every process's RNG state and
the data position, so a resumed run continues exactly where the killed one stopped. Each one is a complete folder
``step-NNNNNNNN/``; the one-line file ``latest`` names the newest and is replaced atomically only after that folder
is whole, so a kill at any instant leaves a checkpoint to resume from.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilora.errors import RunFolderError
from distilora.runfolder import atomic_write_text

if TYPE_CHECKING:
    import torch

LATEST = "latest"
BEST_WEIGHTS = "best.safetensors"


def trainable_state(module: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """The parameters that training changes (a LoRA run's adapters and head, or everything for full)."""
    return {name: p.detach().cpu().contiguous() for name, p in module.named_parameters() if p.requires_grad}


def load_trainable_state(module: "torch.nn.Module", path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing = [n for n, p in module.named_parameters() if p.requires_grad and n not in state]
    if missing:
        raise RunFolderError(f"{path}: checkpoint does not match this model (missing {missing[0]}); "
                             f"start over with --overwrite")
    params = dict(module.named_parameters())
    import torch

    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)


def save_best_weights(module: "torch.nn.Module", checkpoints: Path) -> None:
    from safetensors.torch import save_file

    checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = checkpoints / f".{BEST_WEIGHTS}.tmp"
    save_file(trainable_state(module), str(tmp))
    os.replace(tmp, checkpoints / BEST_WEIGHTS)


def _optimizer_to_files(optimizer: "torch.optim.Optimizer") -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    import torch

    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_files(optimizer: "torch.optim.Optimizer", tensors: dict[str, "torch.Tensor"], meta: dict[str, Any]) -> None:
    per_param: dict[int, dict[str, Any]] = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = flat.split(".", 1)
        per_param.setdefault(int(index), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def save_checkpoint(checkpoints: Path, *, module: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                    scheduler: Any, progress: dict[str, Any], rank: int, world: int, gather: Any, barrier: Any) -> None:
    """Write a checkpoint folder and point ``latest`` at it. Every process's RNG state is gathered to the main one,
    which writes everything: the other processes may run on machines that do not share its disk."""
    import torch
    from safetensors.torch import save_file

    rng_states = gather(torch.get_rng_state()[None])  # (world, state bytes), in rank order
    if rank == 0:
        staging = checkpoints / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for each in range(world):
            save_file({"torch": rng_states[each].contiguous()}, str(staging / f"rng_{each}.safetensors"))
        save_file(trainable_state(module), str(staging / "trainable.safetensors"))
        tensors, meta = _optimizer_to_files(optimizer)
        save_file(tensors, str(staging / "optimizer.safetensors"))
        atomic_write_text(staging / "optimizer.json", json.dumps(meta))
        atomic_write_text(staging / "state.json", json.dumps({**progress, "world": world,
                                                              "scheduler": scheduler.state_dict()}, indent=1))
        name = f"step-{progress['step']:08d}"
        shutil.rmtree(checkpoints / name, ignore_errors=True)  # a stray from a save that was killed half-way
        os.replace(staging, checkpoints / name)
        atomic_write_text(checkpoints / LATEST, name + "\n")
        for older in checkpoints.glob("step-*"):
            if older.name != name:
                shutil.rmtree(older, ignore_errors=True)
    barrier()


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint folder, or None before the first one is written."""
    pointer = checkpoints / LATEST
    if not pointer.is_file():
        return None
    folder = checkpoints / pointer.read_text(encoding="utf-8").strip()
    return folder if (folder / "state.json").is_file() else None


def load_checkpoint(checkpoints: Path, *, module: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                    scheduler: Any, rank: int, world: int) -> dict[str, Any] | None:
    """Restore the latest checkpoint into the given objects; returns its progress record, or None when there is none."""
    import torch
    from safetensors.torch import load_file

    folder = latest_checkpoint(checkpoints)
    if folder is None:
        return None
    progress = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if progress["world"] != world:
        raise RunFolderError(f"{folder}: checkpoint was written by {progress['world']} processes, now {world}; "
                             f"resume with the same number of processes")
    load_trainable_state(module, folder / "trainable.safetensors")
    meta = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
    _optimizer_from_files(optimizer, load_file(str(folder / "optimizer.safetensors")), meta)
    scheduler.load_state_dict(progress.pop("scheduler"))
    torch.set_rng_state(load_file(str(folder / f"rng_{rank}.safetensors"))["torch"])
    return progress
