"""The Accelerate accelerator a run trains under: its precision (checked against the device) and, for a launch of
several processes on machines without GPUs, the CPU process group that makes them one run."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from distilora.config import RunConfig
from distilora.cpu_bf16 import bf16_or_fp32
from distilora.errors import ConfigError

if TYPE_CHECKING:
    from accelerate import Accelerator


def make_accelerator(cfg: RunConfig, logs_dir: Path | None = None) -> "Accelerator":
    """Accelerate picks up `accelerate launch` settings; precision 'auto' means fp32 on CPU, bf16/fp16 on GPUs.
    Trackers in train.report_to that keep files (TensorBoard) write them under logs_dir."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    precision = cfg.train.precision
    if precision == "auto":
        if torch.cuda.is_available():
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "no"
    elif precision == "fp16" and not torch.cuda.is_available():  # Accelerate would silently train in fp32
        raise ConfigError("train.precision: fp16 needs a CUDA GPU; on a CPU use bf16 (fast on CPUs with AVX512-BF16 "
                          "or AMX) or auto (fp32)")
    elif precision == "bf16" and not torch.cuda.is_available() and not bf16_or_fp32("train.precision: bf16"):
        precision = "no"
    # The state is a process-wide singleton that refuses a second precision, so a sweep over train.precision or a
    # notebook training twice would fail; each run starts a fresh one (the distributed PartialState is kept).
    AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=_cpu_process_group(), log_with=cfg.train.report_to or None,
                       project_dir=str(logs_dir) if logs_dir is not None else None)


def _cpu_process_group() -> bool:
    """Whether this process is one rank of a launch on machines without GPUs. Accelerate joins such ranks into a
    CPU (gloo) process group only when told to stay on the CPU; left alone, every process trains the whole run by
    itself. `accelerate launch --cpu` without mpirun starts one process only, so it is refused, not run N times
    smaller than asked."""
    import os

    import torch

    ranked = os.environ.get("LOCAL_RANK") is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1 \
        or int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))) > 1
    if os.environ.get("MASTER_ADDR") and not ranked and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true":
        raise ConfigError("accelerate launch --cpu started a single process (Accelerate needs mpirun for that); on "
                          "machines without GPUs launch with `accelerate launch --multi_gpu --num_processes N ...` "
                          "or `torchrun --nproc_per_node N -m distilora.cli train ...`, which also run on CPUs")
    return ranked and not torch.cuda.is_available()
