"""One served run: its classifier, micro-batcher, metrics and limits, held in ``app.state`` for the handlers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from distilora.errors import ConfigError
from distilora.evaluation.metrics import HEADLINE_METRICS
from distilora.inference.classifier import Classifier
from distilora.runfolder import RunFolder
from distilora.serving.batcher import MicroBatcher
from distilora.serving.observability import ServerMetrics
from distilora.serving.schemas import (Limits, ModelCard, PredictionOut, PredictRequest, PredictResponse,
                                       request_model, text_type)


def refuse_batch_dependent_engine(backend: str, micro_batch_ms: float) -> None:
    """The micro-batcher puts concurrent clients' texts in one batch, so an engine whose scores move with the batch
    would make one client's score depend on another's traffic. PyTorch under bf16 autocast does: by up to 0.005 in
    probability on IMDB reviews (BENCHMARKS.md, "Long texts on an AMX Xeon"), where fp32 and ONNX stay within 1e-4."""
    if backend == "torch-bf16" and micro_batch_ms > 0:
        raise ConfigError(f"--backend torch-bf16 with --micro-batch-ms {micro_batch_ms:g}: bf16 scores change with "
                          f"the other texts in a batch, so one client's scores would depend on another's traffic; "
                          f"serve it with --micro-batch-ms 0, or use --backend onnx, onnx-fused, onnx-int8 or torch")


@dataclass
class ServedModel:
    folder: RunFolder
    classifier: Classifier
    backend: str
    limits: Limits
    micro_batch_ms: float
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    ready: bool = True

    def __post_init__(self) -> None:
        self.name = self.folder.path.resolve().name
        self.columns = _run_text_columns(self.folder)
        self.request_model: type[BaseModel] = request_model(self.limits)
        self.upload_texts = TypeAdapter(list[text_type(self.limits.max_chars)])
        self.batcher = MicroBatcher(self._predict_items, self.micro_batch_ms, self.limits.max_texts * 4,
                                    self.metrics.observe_batch)

    @classmethod
    def load(cls, run_dir: str | Path, backend: str, threads: int | None, limits: Limits,
             micro_batch_ms: float) -> "ServedModel":
        refuse_batch_dependent_engine(backend, micro_batch_ms)
        folder = RunFolder(run_dir)
        return cls(folder, Classifier.load(folder.path, backend=backend, threads=threads), backend, limits,
                   micro_batch_ms)

    def check(self, request: PredictRequest) -> None:
        """This server's limits and the model's text-pair rule, as 422s in pydantic's own words."""
        try:
            self.request_model.model_validate(request.model_dump())
        except ValidationError as err:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
        problem = request.pair_error(self.classifier.info.text_pair)
        if problem:
            raise RequestValidationError([{"loc": ("body",), "msg": f"Value error, {problem}", "type": "value_error",
                                           "input": None}])

    def check_upload(self, filename: str, texts: list[str]) -> None:
        """Upload rows pass the same checks as JSON texts; the first bad row is named."""
        try:
            self.upload_texts.validate_python(texts)
        except ValidationError as err:
            first = err.errors()[0]
            row = int(first["loc"][0]) + 1 if first["loc"] else 0
            status = 413 if first["type"] == "string_too_long" else 400
            raise HTTPException(status_code=status,
                                detail=ascii(f"{filename}: row {row}: {first['msg']}")[1:-1]) from None

    async def predict(self, texts: list[str], pairs: list[str] | None) -> PredictResponse:
        probs = await self.batcher(list(zip(texts, pairs if pairs is not None else [None] * len(texts))))
        return PredictResponse(model=self.name, predictions=[PredictionOut(label=p.label, scores=p.scores)
                                                             for p in self.classifier.to_predictions(probs)])

    def card(self) -> ModelCard:
        info, folder = self.classifier.info, self.folder
        metrics = {split: _headline(folder.metrics(split)) for split in ("validation", "test") if folder.metrics(split)}
        return ModelCard(name=self.name, task=info.task, labels=info.labels, text_pair=info.text_pair,
                         text_columns=self.columns, thresholds=info.thresholds, temperature=info.temperature,
                         method=info.method, backbone=info.backbone, trainable_params=info.trainable_params,
                         total_params=info.total_params, metrics=metrics, limits=self.limits.__dict__)

    def _predict_items(self, items: list[tuple[str, str | None]]) -> Any:
        pairs = [pair for _, pair in items] if self.classifier.info.text_pair else None
        return self.classifier.predict_proba([text for text, _ in items], pairs)


def _run_text_columns(folder: RunFolder) -> list[str]:
    """The text column (and pair column) the run was trained with, so its users upload the files they have."""
    from distilora.config import load_config

    if not folder.config_yaml.is_file():
        return ["text"]
    data = load_config(folder.config_yaml).data
    return [data.text_column] + ([data.text_pair_column] if data.text_pair_column else [])


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures /v1/model shows per split: the report's headline metrics, plus n, precision and recall."""
    keys = ("n", *HEADLINE_METRICS, "precision", "recall")
    return {k: metrics[k] for k in keys if metrics.get(k) is not None}
