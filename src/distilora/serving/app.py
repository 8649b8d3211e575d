"""The REST API and web page for one run: FastAPI, typed requests, bounded inputs, micro-batched predictions.

The handlers are module-level functions on one router; each finds its run's ``ServedModel`` in ``app.state``. The
body-size limit is checked before any parsing; the other limits by the request models (see serving.schemas).
"""

import functools
import os
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from distilora.serving.middleware import BodySizeLimit
from distilora.serving.observability import Observability
from distilora.serving.schemas import (BAD_FILE, NOT_READY, TOO_LARGE, FilePredictResponse, Limits, ModelCard,
                                       PredictRequest, PredictResponse, validation_error)
from distilora.serving.service import ServedModel
from distilora.serving.uploads import texts_from_upload

__all__ = ["Limits", "allowed_hosts_for", "create_app"]
UPLOAD_HELP = "CSV with the run's text column(s) (GET /v1/model: text_columns), or JSONL of objects with those fields"


def served_model(request: Request) -> ServedModel:
    return request.app.state.served


Served = Annotated[ServedModel, Depends(served_model)]
router = APIRouter()


@router.post("/v1/predict", response_model=PredictResponse, responses=TOO_LARGE)
async def predict(body: PredictRequest, served: Served) -> PredictResponse:
    """Classify one text or a list of texts (with their second texts, for a model trained on text pairs)."""
    served.check(body)
    if body.text is not None:
        return await served.predict([body.text], None if body.text_pair is None else [body.text_pair])
    return await served.predict(body.texts, body.text_pairs)


@router.post("/v1/predict-file", response_model=FilePredictResponse, responses=TOO_LARGE | BAD_FILE)
async def predict_file(served: Served, file: UploadFile = File(..., description=UPLOAD_HELP)) -> FilePredictResponse:
    """Classify every text of an uploaded CSV or JSONL file (within the row and size limits)."""
    filename = file.filename or ""
    table = texts_from_upload(filename, await file.read(), served.columns, served.limits.max_file_rows,
                              served.limits.max_chars)
    for texts in table:
        served.check_upload(filename, texts)
    pairs = table[1] if len(table) > 1 else None
    result = await served.predict(table[0], pairs)
    return FilePredictResponse(model=result.model, predictions=result.predictions, texts=table[0], text_pairs=pairs)


@router.get("/v1/model", response_model=ModelCard)
def model_card(served: Served) -> ModelCard:
    """The run's task, labels, decision rule, headline metrics and this server's limits."""
    return served.card()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY)
def readyz(served: Served) -> JSONResponse:
    """Ready: the model is loaded and the server is not shutting down."""
    if not served.ready:
        return JSONResponse(status_code=503, content={"detail": "shutting down"})
    return JSONResponse({"status": "ready", "model": served.name, "backend": served.backend, "pid": os.getpid()})


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(served: Served) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from distilora.serving.workers import metrics_exposition

    return Response(metrics_exposition(served.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> str:
    return page_html()


@functools.cache
def page_html() -> str:
    return (files("distilora") / "serving" / "static" / "index.html").read_text(encoding="utf-8")


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """The API page from the packaged Swagger UI (swagger-ui-bundle), so it works offline."""
    if not has_swagger_ui():
        return HTMLResponse("<p>API docs need the swagger-ui-bundle package (pip install 'distilora[serve]'); "
                            "the schema is at <a href='/openapi.json'>/openapi.json</a>.</p>", status_code=503)
    return get_swagger_ui_html(openapi_url="/openapi.json", title="distilora API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/docs-assets/favicon-32x32.png")


def has_swagger_ui() -> bool:
    try:
        import swagger_ui_bundle  # noqa: F401
    except ImportError:
        return False
    return True


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    served: ServedModel = app.state.served
    served.ready = False  # shutting down: a load balancer stops sending before the last requests finish
    await served.batcher.close()


class RunApp(FastAPI):
    """A FastAPI app whose OpenAPI schema states the limits this server was started with."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            limited = self.state.served.request_model.model_json_schema(ref_template="#/components/schemas/{model}")
            schema["components"]["schemas"]["PredictRequest"] = limited
            self.openapi_schema = schema
        return self.openapi_schema


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts_for(host: str) -> list[str]:
    """Host headers a server bound to ``host`` answers: the loopback names for a local server (so a web page that
    re-binds its own domain to 127.0.0.1 cannot talk to it), anything for an explicit 0.0.0.0 / :: bind."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return sorted({host, *LOCAL_HOSTS}) if host in LOCAL_HOSTS else [host]


def create_app(run_dir: str | Path, *, backend: str = "torch", threads: int | None = None, limits: Limits = Limits(),
               micro_batch_ms: float = 5.0, allowed_hosts: list[str] | None = None, token: str | None = None) -> FastAPI:
    """The app for one run folder (model loaded once, at creation). ``allowed_hosts`` are the Host headers it
    answers (default: the loopback names plus 'testserver' for in-process clients); with ``token`` every request
    but the health probes needs ``Authorization: Bearer <token>``."""
    served = ServedModel.load(run_dir, backend, threads, limits, micro_batch_ms)
    info = served.classifier.info
    app = RunApp(title="distilora", version="1", lifespan=lifespan, docs_url=None,
                 description=f"Text classifier '{served.name}' ({info.task}: {', '.join(info.labels)})",
                 exception_handlers={RequestValidationError: validation_error})
    app.state.served = served
    app.include_router(router)
    if has_swagger_ui():
        from swagger_ui_bundle import swagger_ui_path

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=allowed_hosts or [*allowed_hosts_for("127.0.0.1"), "testserver"])
    app.add_middleware(Observability, metrics=served.metrics, token=token)  # outermost: sees refused requests too
    return app
