"""What a server for traffic needs around the model: Prometheus metrics (prometheus-client), a request id on every
response, one JSON access-log line per request, and an optional bearer token.

All of it is one pure ASGI middleware, so it sees every request (refused ones too) before FastAPI parses anything.
Each app has its own registry, so several apps in one process (tests, notebooks) never share counters.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OPEN_PATHS = ("/healthz", "/readyz")  # probes answer without the token, so an orchestrator needs no secret
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("distilora.access")


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("distilora_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=self.registry)
        self.latency = Histogram("distilora_request_seconds", "Time from request to response", ["path"],
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry)
        self.batch_texts = Histogram("distilora_batch_texts", "Texts per model call (micro-batch size)",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.queue_depth = Gauge("distilora_queue_depth", "Requests waiting for the micro-batcher",
                                 registry=self.registry, multiprocess_mode="livesum")  # summed over live workers
        self.errors = Counter("distilora_errors", "Refused or failed requests by kind", ["kind"], registry=self.registry)

    def observe_batch(self, texts: int, waiting: int) -> None:
        self.batch_texts.observe(texts)
        self.queue_depth.set(waiting)


def error_kind(status: int) -> str | None:
    return {401: "unauthorized", 400: "bad_request", 413: "too_large", 422: "invalid"}.get(
        status, "server_error" if status >= 500 else "client_error" if status >= 400 else None)


class Observability:
    """Request id, timing, metrics, access log and the optional token check, around every HTTP request."""

    def __init__(self, app, metrics: ServerMetrics, token: str | None = None):
        self.app, self.metrics, self.token = app, metrics, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode("latin-1"))]}
            await send(message)

        try:
            if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
                await self._unauthorized(send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, request_id, time.perf_counter() - started)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token or "")

    @staticmethod
    async def _unauthorized(send) -> None:
        body = b'{"detail":"missing or wrong bearer token (Authorization: Bearer <token>)"}'
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope, status: int, request_id: str, seconds: float) -> None:
        route = scope["path"] if scope["path"] in KNOWN_PATHS else "other"  # bounded label values
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        kind = error_kind(status)
        if kind is not None:
            self.metrics.errors.labels(kind).inc()
        access_log.info(json.dumps({"request_id": request_id, "method": scope.get("method"), "path": route,
                                    "status": status, "ms": round(1000 * seconds, 2)}))


KNOWN_PATHS = ("/v1/predict", "/v1/predict-file", "/v1/model", "/healthz", "/readyz", "/metrics", "/", "/docs",
               "/openapi.json")
