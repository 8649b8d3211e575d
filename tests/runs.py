"""Tiny run folders for inference, export and serving tests, built directly (no training) in about a second.

The folder follows the run-folder contract (src/distilora/runfolder.py). Head, adapter and (full) encoder weights
are perturbed away from their initial values, and predictions/validation.jsonl holds the logits of the in-memory
model before saving, so a reload that lost the trained head or adapter shows up as different logits.
"""
from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from tinymodels import write_tiny_backbone, write_tiny_reviews

LABELS = {"binary": ["negative", "positive"], "multiclass": ["negative", "neutral", "positive"],
          "multilabel": ["pos", "neg"]}
THRESHOLDS = {"binary": [0.4], "multiclass": None, "multilabel": [0.5, 0.3]}
MAX_LENGTH = 32
VALIDATION_ROWS = 24


def validation_rows(tmp_path: Path, task: str) -> tuple[list[str], list]:
    """Texts from the tiny vocabulary with labels that follow their words (gold labels for accuracy checks)."""
    path = write_tiny_reviews(tmp_path / f"validation-{task}.csv", VALIDATION_ROWS, seed=7, task=task)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if task == "multilabel":
        return [r["text"] for r in rows], [[int(r["pos"]), int(r["neg"])] for r in rows]
    return [r["text"] for r in rows], [LABELS[task].index(r["label"]) for r in rows]


def make_tiny_run(tmp_path: Path, method: str = "full", task: str = "binary", *, name: str = "run",
                  temperature: float = 1.0, seed: int = 0) -> Path:
    """A finished run folder (model/, run.json, config.yaml, validation predictions and metrics) in tmp_path/name."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from distilora.config import build_config
    from distilora.evaluation.metrics import evaluate_logits
    from distilora.modeling.backbone import quiet_transformers
    from distilora.runfolder import RunFolder, RunInfo, write_json_atomic, write_jsonl_atomic

    backbone = tmp_path / "backbone"
    if not (backbone / "config.json").is_file():
        write_tiny_backbone(backbone)
    labels = LABELS[task]
    torch.manual_seed(seed)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(
            backbone, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
            problem_type="multi_label_classification" if task == "multilabel" else "single_label_classification")
    if method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        with quiet_transformers():
            model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                                                     target_modules=["query", "value"],
                                                     modules_to_save=["classifier", "pooler"]))
    _perturb(model, method, seed)
    model.eval()

    run = tmp_path / name
    folder = RunFolder(run)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    with quiet_transformers():
        model.save_pretrained(folder.model_dir, safe_serialization=True)
    tokenizer.save_pretrained(folder.model_dir)

    texts, gold = validation_rows(tmp_path, task)
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        logits = model(**batch).logits.numpy()
    write_jsonl_atomic(folder.predictions_dir / "validation.jsonl",
                       [{"row": i + 1, "text": t, "label": g, "logits": [float(x) for x in row]}
                        for i, (t, g, row) in enumerate(zip(texts, gold, logits))])
    thresholds = THRESHOLDS[task]
    write_json_atomic(folder.metrics_dir / "validation.json",
                      evaluate_logits(task, logits, np.asarray(gold), labels, temperature, thresholds))
    config = build_config({"name": name, "output_dir": str(run),
                           "data": {"max_length": MAX_LENGTH,
                                    **({"label_column": labels} if task == "multilabel" else {})},
                           "model": {"backbone": str(backbone), "method": method}})
    (run / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    folder.write_info(RunInfo(task=task, labels=labels, method=method, backbone=str(backbone), max_length=MAX_LENGTH,
                              thresholds=thresholds, temperature=temperature, trainable_params=trainable,
                              total_params=sum(p.numel() for p in model.parameters())))
    return run


def stored_logits(run: Path) -> tuple[list[str], np.ndarray]:
    """The validation texts and the logits the in-memory model gave before it was saved."""
    rows = [json.loads(line) for line in (run / "predictions" / "validation.jsonl").read_text().splitlines()]
    return [r["text"] for r in rows], np.asarray([r["logits"] for r in rows], dtype=np.float32)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`distilora ARGS` in this process, through the real entry point (its one-line errors and exit codes)."""
    import sys

    from distilora.cli import main

    monkeypatch.setattr(sys, "argv", ["distilora", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(app) -> Iterator[str]:
    """A real uvicorn server for ``app`` on a free loopback port, in a thread; yields its base URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _perturb(model, method: str, seed: int) -> None:
    """Move the trained parts away from their initial values: the head a lot (spread-out scores), the rest a little."""
    import torch

    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "original_module" in name:  # PEFT's untouched copy of the head; not saved
                continue
            if "classifier" in name:
                scale = 1.0
            elif "lora_" in name or "modules_to_save" in name or method == "full":
                scale = 0.1
            else:
                continue
            param.add_(scale * torch.randn(param.shape, generator=generator))


def logits_of(model, texts: list[str], run: Path) -> np.ndarray:
    """Plain transformers forward pass on one padded batch (independent of distilora's batching)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    with torch.inference_mode():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
