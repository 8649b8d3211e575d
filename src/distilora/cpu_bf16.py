"""Whether this CPU computes bfloat16 natively, and what to do where it does not.

bf16 is a speed option on CPUs with AVX512-BF16 or AMX (oneDNN's bf16 kernels). Elsewhere (e.g. AVX2-only CPUs)
PyTorch emulates it, and a bf16 step was 10-40x slower than fp32 here (2026-12-02, AMD EPYC with AVX2 only:
mpnet forward+backward 51 s vs 1.3 s). Asking for bf16 there falls back to fp32 with a warning, not a silent
hour-long run.
"""
from __future__ import annotations

import functools
import warnings

from distilora.errors import DistiloraWarning


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """True where oneDNN has bf16 kernels for this CPU."""
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_or_fp32(asked_by: str) -> bool:
    """Whether to use the bf16 that ``asked_by`` (a config field or backend name) asked for on the CPU."""
    if native_bf16():
        return True
    warnings.warn(DistiloraWarning(
        f"{asked_by}: this CPU has no native bf16 (no AVX512-BF16 or AMX), where bf16 runs 10-40x slower than fp32; "
        "using fp32 instead"), stacklevel=2)
    return False
