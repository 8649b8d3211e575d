"""The tiny-data recipe: the warm-started head agrees with the logistic regression it came from, and a run with a
handful of texts and nothing held out trains, records its recipe and reloads like any run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinymodels import write_tiny_backbone, write_tiny_reviews


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_warm_started_head_reproduces_the_logistic_regression(tmp_path: Path, task: str) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression

    from distilora.config import build_config
    from distilora.data.loading import load_splits
    from distilora.data.tokenize import encode, load_fast_tokenizer
    from distilora.modeling.build import build_model
    from distilora.training.few_shot import warm_start_head
    from distilora.training.loop import make_train_module, predict_logits

    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=64)
    data = write_tiny_reviews(tmp_path / "train.csv", 60, seed=1, task=task)
    cfg = build_config({"data": {"train": str(data), "max_length": 32}, "model": {"backbone": str(backbone)}})
    splits = load_splits(cfg.data)
    built = build_model(cfg, splits.label_space)
    module = make_train_module(built.model)
    encoded = encode(load_fast_tokenizer(str(backbone)), splits.train.texts, None, 32)
    before = predict_logits(module, encoded, 8, 0)
    warm_start_head(module, encoded, splits.train.labels, 0, 8, seed=0)
    after = torch.softmax(torch.from_numpy(predict_logits(module, encoded, 8, 0)), dim=-1).numpy()
    accuracy = (after.argmax(1) == splits.train.labels).mean()
    assert accuracy >= (before.argmax(1) == splits.train.labels).mean() + 0.25  # far above the random head

    features = []
    classifier_layer = module.classifier.classifier
    hook = classifier_layer.register_forward_hook(lambda m, i, o: features.append(i[0].detach()))
    predict_logits(module, encoded, len(splits.train), 0)
    hook.remove()
    order = np.argsort(-encoded.lengths, kind="stable")
    x = np.zeros((len(order), classifier_layer.in_features), dtype=np.float32)
    x[order] = features[0].numpy()
    z = (x - x.mean(axis=0)) / (x.std() + 1e-6)
    reference = LogisticRegression(max_iter=2000, random_state=0).fit(z, splits.train.labels).predict_proba(z)
    assert np.allclose(after, reference, atol=1e-4)


@pytest.mark.slow
def test_sixteen_texts_with_nothing_held_out_train_and_reload(tmp_path: Path) -> None:
    from distilora.config import build_config
    from distilora.inference.classifier import Classifier
    from distilora.training.runner import train

    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=64)
    data = write_tiny_reviews(tmp_path / "train.csv", 16, seed=2)
    test = write_tiny_reviews(tmp_path / "test.csv", 40, seed=9)
    cfg = build_config({"output_dir": str(tmp_path / "run"), "model": {"backbone": str(backbone)},
                        "data": {"train": str(data), "test": str(test), "validation_fraction": 0, "max_length": 32},
                        "train": {"epochs": 1, "few_shot": "auto", "few_shot_epochs": 5, "batch_size": 8}, "eval": {"report": False}})
    run = train(cfg)
    info = json.loads((run / "run.json").read_text())
    assert info["few_shot"] is True and info["validation_held_out"] is False
    assert info["thresholds"] in (None, [0.5]) and info["temperature"] == 1.0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 5  # the few-shot floor of epochs, one evaluation each
    assert json.loads((run / "metrics" / "validation.json").read_text())["n"] == 16  # the training texts
    saved = [json.loads(line) for line in (run / "predictions" / "test.jsonl").read_text().splitlines()]
    reloaded = Classifier.load(run).predict_logits([row["text"] for row in saved])
    assert np.allclose(reloaded, [row["logits"] for row in saved], atol=1e-4)
