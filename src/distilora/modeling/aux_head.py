"""The auxiliary head: extra per-target logits learned from a teacher's scores (multi-target distillation).

It sits beside the classifier on the first-token hidden state of the last layer, which every Hugging Face encoder
exposes via ``output_hidden_states=True``, so it works for any backbone without touching the classifier's head.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from distilora.errors import ConfigError, RunFolderError
from distilora.runfolder import atomic_write_file, write_json_atomic

WEIGHTS_FILE = "aux_head.safetensors"
META_FILE = "aux_head.json"


class AuxHead(torch.nn.Module):
    """Dropout + Linear(hidden, m) on the first token's last hidden state; one logit per auxiliary target."""

    def __init__(self, hidden_size: int, names: list[str], dropout: float = 0.1):
        super().__init__()
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"distill.aux_names: {names!r} must be a non-empty list of distinct names")
        self.names = list(names)
        self.hidden_size = hidden_size
        self.dropout = torch.nn.Dropout(dropout)
        self.proj = torch.nn.Linear(hidden_size, len(names))

    def forward(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """[batch, seq, hidden] -> [batch, m] logits."""
        return self.proj(self.dropout(last_hidden_state[:, 0]))


def save_aux_head(head: AuxHead, folder: Path) -> None:
    """Write folder/aux_head.safetensors and folder/aux_head.json (names, hidden size, dropout), each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {key: value.detach().contiguous().cpu() for key, value in head.state_dict().items()}
    atomic_write_file(folder / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp)))
    write_json_atomic(folder / META_FILE, {"names": head.names, "hidden_size": head.hidden_size,
                                           "dropout": head.dropout.p})


def load_aux_head(folder: Path) -> AuxHead | None:
    """The saved head, or None when the folder has none (a run trained without teacher scores)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    weights, meta = folder / WEIGHTS_FILE, folder / META_FILE
    if not weights.is_file() and not meta.is_file():
        return None
    if not (weights.is_file() and meta.is_file()):
        present, missing = (weights, meta) if weights.is_file() else (meta, weights)
        raise RunFolderError(f"{folder}: has {present.name} but not {missing.name}; retrain or remove the auxiliary head")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        head = AuxHead(int(info["hidden_size"]), list(info["names"]), float(info.get("dropout", 0.1)))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, ConfigError) as err:
        raise RunFolderError(f"{meta}: unreadable auxiliary head description ({err})") from None
    try:
        head.load_state_dict(load_file(weights))
    except (SafetensorError, RuntimeError, OSError) as err:
        raise RunFolderError(f"{weights}: does not fit {meta.name} ({str(err).splitlines()[0]})") from None
    head.eval()
    return head
