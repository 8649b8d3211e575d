"""Pure ASGI middleware that bounds a request body before any parser sees it."""
from fastapi.responses import JSONResponse


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


