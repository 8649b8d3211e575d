"""The API's typed requests and responses, and the limits every input is bounded by.

``PredictRequest`` is one module-level model, so the handlers are ordinary functions; the per-server limits
(text length, texts per request) are checked by ``request_model(limits)``, the same model with those bounds, which
also gives the OpenAPI schema its maxLength / maxItems.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, create_model, model_validator


@dataclass(frozen=True)
class Limits:
    """Bounds on every input; each 4xx names the one that was hit."""

    max_chars: int = 5_000
    max_texts: int = 64
    max_body_bytes: int = 1_000_000
    max_file_rows: int = 2_000


def visible_text(text: str) -> str:
    """Refuse a text of only spaces (pydantic already refuses what is not valid Unicode, e.g. a lone surrogate)."""
    if not text.strip():
        raise ValueError("is blank; send a text with at least one visible character")
    return text


def text_type(max_chars: int | None = None) -> Any:
    """A request text: at least one visible character and, on a server, at most ``max_chars``."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_chars), AfterValidator(visible_text)]


class RequestRules(BaseModel):
    """What a prediction request must satisfy whatever the server's limits."""

    @model_validator(mode="after")
    def exactly_one(self) -> "RequestRules":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def pair_error(self, pairs_expected: bool) -> str | None:
        """Why these fields do not fit a model that does (or does not) classify text pairs; None when they do."""
        given = self.text_pair is not None or self.text_pairs is not None
        if not pairs_expected:
            return "this model classifies single texts: give no 'text_pair' or 'text_pairs'" if given else None
        if (self.text is not None and self.text_pair is None) or (
                self.texts is not None and (self.text_pairs is None or len(self.text_pairs) != len(self.texts))):
            return "this model classifies text pairs: give 'text' with 'text_pair', or 'texts' with as many 'text_pairs'"
        return None


REQUEST_DOC = "One text or a list of texts, with their second texts for a model trained on text pairs."


def request_model(limits: Limits | None = None) -> Any:
    """The prediction request model; without ``limits`` it is the module's PredictRequest, a server builds one with
    its own bounds."""
    text = text_type(limits.max_chars if limits else None)
    many = {"min_length": 1, "max_length": limits.max_texts if limits else None}
    texts_help = (f"Up to {limits.max_texts} texts of at most {limits.max_chars} characters." if limits
                  else "A list of texts to classify.")
    pair_help = " (models trained on text pairs only)."
    return create_model(
        "PredictRequest", __base__=RequestRules, __doc__=REQUEST_DOC,
        text=(Optional[text], Field(None, description="One text to classify.")),
        texts=(Optional[list[text]], Field(None, **many, description=texts_help)),
        text_pair=(Optional[text], Field(None, description="The second text of the pair" + pair_help)),
        text_pairs=(Optional[list[text]], Field(None, **many, description="The second texts, one per text" + pair_help)))


PredictRequest = request_model()


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


TOO_LARGE = {413: {"model": ErrorBody, "description": "Over a size limit (max_body_bytes, max_file_rows, max_chars)"}}
BAD_FILE = {400: {"model": ErrorBody, "description": "The uploaded file cannot be read as CSV/JSONL texts"}}
NOT_READY = {503: {"model": ErrorBody, "description": "Shutting down"}}


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped, so an error that echoes a lone surrogate back still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def validation_error(_: Request, err: RequestValidationError) -> AsciiJSONResponse:
    """422 with pydantic's messages; the offending input is shown escaped (never the cause of a 500)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", ""),
               "input": ascii(e.get("input"))[:200]} for e in err.errors()]
    return AsciiJSONResponse(status_code=422, content={"detail": errors})
