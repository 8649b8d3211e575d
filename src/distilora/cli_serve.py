"""`distilora serve`: the REST API and web page of one run, bound to localhost unless told otherwise."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from distilora.cli_options import Backend


def serve(run: Annotated[Path, typer.Argument(help="Run folder.")],
          host: Annotated[str, typer.Option(help="Address to bind; the default keeps the server local.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 8000,
          backend: Annotated[Backend, typer.Option(help="Engine (the ONNX ones need `distilora export`).")] = "torch",
          threads: Annotated[Optional[int], typer.Option(help="CPU threads for the model.")] = None,
          micro_batch_ms: Annotated[float, typer.Option(help="Wait this long to batch concurrent requests (0 = off).")] = 5.0,
          max_chars: Annotated[int, typer.Option(help="Longest text accepted.")] = 5_000,
          max_texts: Annotated[int, typer.Option(help="Most texts per request.")] = 64,
          max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
          max_file_rows: Annotated[int, typer.Option(help="Most rows in an uploaded file.")] = 2_000,
          allowed_host: Annotated[Optional[list[str]], typer.Option("--allowed-host", help="Host header to answer "
                                "(repeatable); default: the bound address, plus the loopback names for a local "
                                "server, which blocks DNS-rebinding pages.")] = None,
          token_file: Annotated[Optional[Path], typer.Option(help="File holding a bearer token that every request "
                                                             "but /healthz and /readyz must send.")] = None,
          workers: Annotated[int, typer.Option(min=1, help="Server processes, each with its own engine and "
                                               "micro-batcher; --threads defaults to the cores / workers.")] = 1) -> None:
    """Serve the REST API (/v1/predict, /v1/predict-file, /v1/model, /healthz, /readyz, /metrics, /docs) and the web
    page at /; one JSON access-log line per request on stderr."""
    import logging
    import os
    import socket

    import uvicorn

    from distilora.errors import ConfigError
    from distilora.serving.app import Limits, allowed_hosts_for
    from distilora.serving.service import refuse_batch_dependent_engine
    from distilora.serving.workers import SETTINGS_ENV, ServeSettings, shared_metrics_dir

    try:  # a busy port is said before minutes of model loading, not after
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({err.strerror}); pick another --port "
                          f"or stop what is using it") from None
    refuse_batch_dependent_engine(backend, micro_batch_ms)  # here too, before any worker starts loading
    if token_file:
        _read_token(token_file)  # checked here, read again by each worker (the token never enters the environment)
    limits = Limits(max_chars=max_chars, max_texts=max_texts, max_body_bytes=max_body_bytes, max_file_rows=max_file_rows)
    settings = ServeSettings(run=str(run), backend=backend, threads=threads or _threads_per_worker(workers),
                             limits=limits.__dict__, micro_batch_ms=micro_batch_ms,
                             allowed_hosts=allowed_host or allowed_hosts_for(host),
                             token_file=str(token_file.resolve()) if token_file else None)
    access = logging.getLogger("distilora.access")
    access.addHandler(logging.StreamHandler())
    access.setLevel(logging.INFO)
    typer.echo(f"serving {run} on http://{host}:{port}/ (API docs at /docs)"
               + (f" with {workers} workers x {settings.threads} threads" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(settings.app(), host=host, port=port, log_level="warning")
        return
    with shared_metrics_dir():  # each worker process builds its own app from the settings it inherits
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("distilora.serving.workers:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="warning")


def _threads_per_worker(workers: int) -> int | None:
    """All cores for one worker (the engine's default); a share of them for several, so they never oversubscribe."""
    import os

    return None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)


def _read_token(path: Path) -> str:
    from distilora.errors import ConfigError

    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--token-file {path}: cannot read it ({err}); give a text file holding the token") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(f"--token-file {path}: the token must be one word of at least 16 characters")
    return token
