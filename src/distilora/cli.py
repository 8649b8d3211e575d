"""The `distilora` command: parses arguments, calls the library, prints known errors on one line.

Kept thin and light: each command imports what it needs inside its body, so `distilora --help` and the ONNX
predict path never import torch.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from distilora.errors import DistiloraError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, evaluate, distil, export and serve compact text classifiers.")

ConfigArg = Annotated[Optional[Path], typer.Argument(help="YAML config (see `distilora init`); empty = defaults.")]


@app.callback()
def _root() -> None:
    """Train, evaluate, distil, export and serve compact text classifiers."""


SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override config fields: --set peft.r=16 train.lr=5e-4")]


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("distilora.yaml"),
         force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False) -> None:
    """Write an annotated starter config with every field, its default and what it does."""
    from distilora.config import annotated_yaml
    from distilora.errors import ConfigError
    from distilora.runfolder import atomic_write_text

    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; pass --force to overwrite it")
    atomic_write_text(path, annotated_yaml())
    typer.echo(f"wrote {path}")


def main() -> None:
    """Entry point: run the app and turn user errors into one line on stderr with exit code 2."""
    try:
        app()
    except DistiloraError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
