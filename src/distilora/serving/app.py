"""The REST API and web page for one run: FastAPI, typed requests, bounded inputs, micro-batched predictions.

Request models carry the limits (text length, texts per request), so validation errors and the OpenAPI schema
come from pydantic; the body-size limit is checked before any parsing.
"""

import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import (AfterValidator, BaseModel, Field, StringConstraints, TypeAdapter, ValidationError, create_model,
                      model_validator)
from starlette.middleware.trustedhost import TrustedHostMiddleware

from distilora.evaluation.metrics import HEADLINE_METRICS
from distilora.inference.classifier import Classifier
from distilora.runfolder import RunFolder
from distilora.serving.batcher import MicroBatcher
from distilora.serving.observability import Observability, ServerMetrics
from distilora.serving.uploads import texts_from_upload


@dataclass(frozen=True)
class Limits:
    """Bounds on every input; each 4xx names the one that was hit."""

    max_chars: int = 5_000
    max_texts: int = 64
    max_body_bytes: int = 1_000_000
    max_file_rows: int = 2_000


class PredictionOut(BaseModel):
    label: str | list[str]
    scores: dict[str, float]


class PredictResponse(BaseModel):
    model: str
    predictions: list[PredictionOut]


class FilePredictResponse(PredictResponse):
    texts: list[str]
    text_pairs: Optional[list[str]] = None


class ErrorBody(BaseModel):
    """A refused request: what was wrong, naming the limit (and its value) or the row at fault."""

    detail: str


TOO_LARGE = {413: {"model": ErrorBody, "description": "Over a size limit (max_body_bytes, max_file_rows, max_chars)"}}
BAD_FILE = {400: {"model": ErrorBody, "description": "The uploaded file cannot be read as CSV/JSONL texts"}}


def visible_text(text: str) -> str:
    """Refuse a text of only spaces (pydantic already refuses what is not valid Unicode, e.g. a lone surrogate)."""
    if not text.strip():
        raise ValueError("is blank; send a text with at least one visible character")
    return text


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped, so an error that echoes a lone surrogate back still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def validation_error(_: Request, err: RequestValidationError) -> AsciiJSONResponse:
    """422 with pydantic's messages; the offending input is shown escaped (never the cause of a 500)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", ""),
               "input": ascii(e.get("input"))[:200]} for e in err.errors()]
    return AsciiJSONResponse(status_code=422, content={"detail": errors})


class ModelCard(BaseModel):
    name: str
    task: str
    labels: list[str]
    text_pair: bool = Field(description="Trained on text pairs: requests give text_pair / text_pairs too.")
    text_columns: list[str] = Field(description="The columns a file upload needs (the run's own column names).")
    thresholds: Optional[list[float]]
    temperature: float
    method: str
    backbone: str
    trainable_params: Optional[int]
    total_params: Optional[int]
    metrics: dict[str, Any]
    limits: dict[str, int]


class BodySizeLimit:
    """Pure ASGI middleware: refuse bodies over the limit with 413, by Content-Length or while reading the stream.

    The body is read here in full (it is bounded) and replayed to the app, so an oversized chunked upload is
    stopped before any parser sees it.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = JSONResponse(status_code=413, content={"detail": f"request body is over the {self.max_bytes:,}-byte "
                                                                     f"limit (max_body_bytes={self.max_bytes})"})
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_big(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await too_big(scope, receive, send)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # nothing more to read: wait for the client to disconnect
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


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
    folder = RunFolder(run_dir)
    classifier = Classifier.load(folder.path, backend=backend, threads=threads)
    info = classifier.info
    name = folder.path.resolve().name
    columns = _run_text_columns(folder)
    metrics = ServerMetrics()

    def predict_items(items: list[tuple[str, str | None]]) -> Any:
        pairs = [pair for _, pair in items] if info.text_pair else None
        return classifier.predict_proba([text for text, _ in items], pairs)

    batcher = MicroBatcher(predict_items, micro_batch_ms, limits.max_texts * 4, metrics.observe_batch)
    state = {"ready": True}

    text_field = Field(None, description="One text to classify.")
    texts_field = Field(None, min_length=1, max_length=limits.max_texts,
                        description=f"Up to {limits.max_texts} texts of at most {limits.max_chars} characters.")
    text_type = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_chars), AfterValidator(visible_text)]

    def exactly_one(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        given_pairs = self.text_pair is not None or self.text_pairs is not None
        if not info.text_pair and given_pairs:
            raise ValueError("this model classifies single texts: give no 'text_pair' or 'text_pairs'")
        if info.text_pair and ((self.text is not None and self.text_pair is None) or
                               (self.texts is not None and (self.text_pairs is None or
                                                            len(self.text_pairs) != len(self.texts)))):
            raise ValueError("this model classifies text pairs: give 'text' with 'text_pair', or 'texts' with as many "
                             "'text_pairs'")
        return self

    pair_help = " (models trained on text pairs only)"
    PredictRequest = create_model(  # noqa: N806 - a class built with the configured limits
        "PredictRequest", text=(Optional[text_type], text_field),
        texts=(Optional[list[text_type]], texts_field),
        text_pair=(Optional[text_type], Field(None, description="The second text of the pair" + pair_help + ".")),
        text_pairs=(Optional[list[text_type]], Field(None, min_length=1, max_length=limits.max_texts,
                                                      description="The second texts, one per text" + pair_help + ".")),
        __validators__={"exactly_one": model_validator(mode="after")(exactly_one)})

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        state["ready"] = False  # shutting down: a load balancer stops sending before the last requests finish
        await batcher.close()

    app = FastAPI(title="distilora", version="1", lifespan=lifespan, docs_url=None,
                  description=f"Text classifier '{name}' ({info.task}: {', '.join(info.labels)})",
                  exception_handlers={RequestValidationError: validation_error})
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=allowed_hosts or [*allowed_hosts_for("127.0.0.1"), "testserver"])
    app.add_middleware(Observability, metrics=metrics, token=token)  # outermost: sees refused requests too
    _mount_docs(app)
    upload_texts = TypeAdapter(list[text_type])

    async def run_predictions(texts: list[str], pairs: list[str] | None) -> PredictResponse:
        probs = await batcher(list(zip(texts, pairs if pairs is not None else [None] * len(texts))))
        return PredictResponse(model=name, predictions=[PredictionOut(label=p.label, scores=p.scores)
                                                        for p in classifier.to_predictions(probs)])

    @app.post("/v1/predict", response_model=PredictResponse, responses=TOO_LARGE)
    async def predict(request: PredictRequest) -> PredictResponse:  # type: ignore[valid-type]
        """Classify one text or a list of texts (with their second texts, for a model trained on text pairs)."""
        if request.text is not None:
            return await run_predictions([request.text], None if request.text_pair is None else [request.text_pair])
        return await run_predictions(request.texts, request.text_pairs)

    upload_help = f"CSV with {' and '.join(repr(c) for c in columns)} columns, or JSONL of objects with those fields"

    @app.post("/v1/predict-file", response_model=FilePredictResponse, responses=TOO_LARGE | BAD_FILE)
    async def predict_file(file: UploadFile = File(..., description=upload_help)) -> FilePredictResponse:
        """Classify every text of an uploaded CSV or JSONL file (within the row and size limits)."""
        table = texts_from_upload(file.filename or "", await file.read(), columns, limits.max_file_rows,
                                  limits.max_chars)
        for texts in table:
            _check_upload_texts(upload_texts, file.filename or "", texts)
        pairs = table[1] if len(table) > 1 else None
        result = await run_predictions(table[0], pairs)
        return FilePredictResponse(model=result.model, predictions=result.predictions, texts=table[0], text_pairs=pairs)

    @app.get("/v1/model", response_model=ModelCard)
    def model_card() -> ModelCard:
        metrics = {split: _headline(folder.metrics(split)) for split in ("validation", "test") if folder.metrics(split)}
        return ModelCard(name=name, task=info.task, labels=info.labels, text_pair=info.text_pair, text_columns=columns,
                         thresholds=info.thresholds,
                         temperature=info.temperature, method=info.method, backbone=info.backbone,
                         trainable_params=info.trainable_params, total_params=info.total_params, metrics=metrics,
                         limits=limits.__dict__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorBody, "description": "Shutting down"}})
    def readyz() -> JSONResponse:
        """Ready: the model is loaded and the server is not shutting down."""
        if not state["ready"]:
            return JSONResponse(status_code=503, content={"detail": "shutting down"})
        return JSONResponse({"status": "ready", "model": name, "backend": backend, "pid": os.getpid()})

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from distilora.serving.workers import metrics_exposition

        return Response(metrics_exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    page = (files("distilora") / "serving" / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    return app


def _run_text_columns(folder: RunFolder) -> list[str]:
    """The text column (and pair column) the run was trained with, so its users upload the files they have."""
    from distilora.config import load_config

    if not folder.config_yaml.is_file():
        return ["text"]
    data = load_config(folder.config_yaml).data
    return [data.text_column] + ([data.text_pair_column] if data.text_pair_column else [])


def _mount_docs(app: FastAPI) -> None:
    """/docs from the packaged Swagger UI (swagger-ui-bundle), so the API page works offline; without that package
    /docs says how to get it (the schema stays at /openapi.json)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        @app.get("/docs", include_in_schema=False)
        def docs_missing() -> HTMLResponse:
            return HTMLResponse("<p>API docs need the swagger-ui-bundle package (pip install 'distilora[serve]'); "
                                "the schema is at <a href='/openapi.json'>/openapi.json</a>.</p>", status_code=503)
        return
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="distilora API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def _check_upload_texts(adapter: TypeAdapter, filename: str, texts: list[str]) -> None:
    """Upload rows pass the same checks as JSON texts; the first bad row is named."""
    try:
        adapter.validate_python(texts)
    except ValidationError as err:
        first = err.errors()[0]
        row = int(first["loc"][0]) + 1 if first["loc"] else 0
        status = 413 if first["type"] == "string_too_long" else 400
        raise HTTPException(status_code=status, detail=ascii(f"{filename}: row {row}: {first['msg']}")[1:-1]) from None


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures /v1/model shows per split: the report's headline metrics, plus n, precision and recall."""
    keys = ("n", *HEADLINE_METRICS, "precision", "recall")
    return {k: metrics[k] for k in keys if metrics.get(k) is not None}
