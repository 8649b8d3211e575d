"""Where a backbone's weights live: a named backbone (bundled MiniLM, installed mpnet), a local folder, or a hub id."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from distilora.errors import ConfigError
from distilora.modeling.named_backbones import named_backbone


def resolve_backbone(name: str) -> str:
    """Turn model.backbone into something `from_pretrained` accepts: a folder path or a hub id.

    A named backbone (or its hub id, as adapters record it) resolves to its local copy; a missing one is an error
    that says how to install it, never a download behind the user's back.
    """
    named = named_backbone(name)
    if named is not None:
        path = named.installed_path()
        if path is None and name == named.hub_id:
            return name  # a hub id with no local copy: from_pretrained fetches it where there is a network
        if path is None:
            raise ConfigError(f"model.backbone: '{named.name}' ({named.hub_id}) is not installed; install it once with "
                              f"`{named.install_command}` (see `distilora backbones`)")
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.backbone: {path} has no config.json; point it at a Hugging Face model folder")
        return str(path)
    if name.count("/") <= 1 and not name.startswith((".", "/", "~")):
        return name  # a hub id; from_pretrained reports a missing network itself
    raise ConfigError(f"model.backbone: {name} is neither an existing folder nor a hub id")


def unloadable_backbone(path: str, err: Exception) -> ConfigError:
    """The one-line error for a backbone that from_pretrained could not load: most often a hub id on a machine
    without network access, which transformers reports as a long OSError."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ConfigError(f"model.backbone: cannot load {path} ({reason}); without network access give a local model "
                       f"folder or a named backbone (`distilora backbones`)")


def portable_backbone_name(name: str) -> str:
    """What a run records as its base model: a named backbone's hub id, anything else as given."""
    named = named_backbone(name)
    return named.hub_id if named is not None else name


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
