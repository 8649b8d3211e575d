"""The server a user would write without distilora: FastAPI + transformers.pipeline, one text per request.

Started by bench/server_peer.py as `uvicorn peer_server:app` with PEER_MODEL set to a Hugging Face model folder (the
run's full or merged weights), so both servers run the same model on the same machine.
"""
from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

classifier = pipeline("text-classification", model=os.environ["PEER_MODEL"], truncation=True,
                      max_length=int(os.environ.get("PEER_MAX_LENGTH", "128")), top_k=None)
app = FastAPI()


class PredictIn(BaseModel):
    text: str


class PredictOut(BaseModel):
    label: str
    scores: dict[str, float]


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/predict", response_model=PredictOut)
def predict(body: PredictIn) -> PredictOut:
    scores = {row["label"]: row["score"] for row in classifier([body.text])[0]}  # all classes of the one text
    return PredictOut(label=max(scores, key=scores.get), scores=scores)
