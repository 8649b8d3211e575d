"""The tiny-data recipe: the mean-pooling layer computes a masked mean, contrastive pairs and tuning do what they say,
the warm-started head agrees with the logistic regression it came from, and a run with a handful of texts and nothing
held out trains, records its recipe and reloads like any run (plain transformers included)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinymodels import write_tiny_backbone, write_tiny_reviews


def test_the_mean_pooling_layer_feeds_the_head_the_masked_mean_of_the_token_states(tmp_path: Path) -> None:
    import torch

    from distilora.data.labels import LabelSpace
    from distilora.modeling.build import load_classifier
    from distilora.modeling.pooling import POOLER_SCALE, add_mean_pooling_layer

    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=32)
    space = LabelSpace(("negative", "positive"), "binary")
    plain, pooled = load_classifier(str(backbone), space).eval(), load_classifier(str(backbone), space).eval()
    add_mean_pooling_layer(pooled)
    assert pooled.config.num_hidden_layers == plain.config.num_hidden_layers + 1
    ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        states = plain.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        mean = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        expected = torch.tanh(POOLER_SCALE * torch.nn.functional.layer_norm(mean, mean.shape[-1:], eps=1e-12))
        pooler = pooled.bert(input_ids=ids, attention_mask=mask).pooler_output
        alone = pooled.bert(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).pooler_output
    assert torch.allclose(pooler, expected, atol=5e-3)  # the residual [CLS] state is a 1/1000 share
    assert torch.allclose(pooler[1:], alone, atol=1e-5)  # padding takes no part in the mean


def test_mean_pooling_is_refused_for_an_architecture_with_a_position_bias(tmp_path: Path) -> None:
    from distilora.config import build_config
    from distilora.data.labels import LabelSpace
    from distilora.errors import ConfigError
    from distilora.modeling.build import build_model

    backbone = write_tiny_backbone(tmp_path / "mpnet", model_type="mpnet")
    cfg = build_config({"data": {"train": "x.csv"}, "model": {"backbone": str(backbone), "pooling": "mean"}})
    with pytest.raises(ConfigError, match="model.pooling: mean is built for BERT-type backbones, not 'mpnet'"):
        build_model(cfg, LabelSpace(("a", "b"), "binary"))


def test_contrastive_pairs_give_every_text_partners_of_its_own_class_and_of_others() -> None:
    from distilora.training.contrastive import contrastive_pairs

    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pairs = contrastive_pairs(labels, seed=3, per_text=5)
    assert len(pairs) == 2 * 5 * len(labels)
    assert not (pairs[:, 0] == pairs[:, 1]).any()
    assert ((labels[pairs[:, 0]] == labels[pairs[:, 1]]) == (pairs[:, 2] == 1)).all()
    for i in range(len(labels)):
        mine = pairs[pairs[:, 0] == i]
        assert (mine[:, 2] == 1).sum() == 5 and (mine[:, 2] == 0).sum() == 5
    assert np.array_equal(pairs, contrastive_pairs(labels, seed=3, per_text=5))


def test_contrastive_pairs_grow_with_the_class_past_forty_texts() -> None:
    from distilora.training.contrastive import MIN_PAIRS_PER_TEXT, contrastive_pairs

    small, large = np.repeat([0, 1], 16), np.repeat([0, 1], 64)
    assert len(contrastive_pairs(small, seed=0)) == 2 * MIN_PAIRS_PER_TEXT * len(small)
    assert len(contrastive_pairs(large, seed=0)) == 2 * 32 * len(large)  # half of each 64-text class


def test_contrastive_tuning_pulls_each_class_together(tmp_path: Path, monkeypatch) -> None:
    import torch

    from distilora.config import build_config
    from distilora.data.loading import load_splits
    from distilora.data.tokenize import encode, load_fast_tokenizer
    from distilora.modeling.build import build_model
    from distilora.training import contrastive
    from distilora.training.few_shot import head_output_layer
    from distilora.training.loop import make_train_module, predict_logits

    monkeypatch.setattr(contrastive, "LEARNING_RATE", 1e-3)  # a random tiny encoder needs bigger steps than MiniLM
    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=32)
    data = write_tiny_reviews(tmp_path / "train.csv", 24, seed=4)
    cfg = build_config({"data": {"train": str(data), "max_length": 32},
                        "model": {"backbone": str(backbone), "method": "full", "pooling": "mean"}})
    splits = load_splits(cfg.data)
    module = make_train_module(build_model(cfg, splits.label_space).model)
    encoded = encode(load_fast_tokenizer(str(backbone)), splits.train.texts, None, 32)
    labels = splits.train.labels
    layer = head_output_layer(module.classifier)

    def separation() -> float:
        features = []
        hook = layer.register_forward_hook(lambda m, i, o: features.append(i[0].detach()))
        predict_logits(module, encoded, len(labels), 0)
        hook.remove()
        order = np.argsort(-encoded.lengths, kind="stable")
        x = torch.zeros_like(features[0])
        x[torch.from_numpy(order)] = features[0]
        similarity = torch.nn.functional.cosine_similarity(x[:, None], x[None], dim=-1).numpy()
        same = labels[:, None] == labels[None]
        return float(similarity[same].mean() - similarity[~same].mean())

    before = separation()
    contrastive.contrastive_tune(module, layer, encoded, labels, 0, seed=0, show_progress=False)
    assert separation() > before + 0.2


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
    cfg = build_config({"data": {"train": str(data), "max_length": 32}, "model": {"backbone": str(backbone), "pooling": "mean", "method": "full"}})  # as the recipe reads texts
    splits = load_splits(cfg.data)
    built = build_model(cfg, splits.label_space)
    module = make_train_module(built.model)
    encoded = encode(load_fast_tokenizer(str(backbone)), splits.train.texts, None, 32)
    warm_start_head(module, encoded, splits.train.labels, 0, 8, seed=0)
    after = torch.softmax(torch.from_numpy(predict_logits(module, encoded, 8, 0)), dim=-1).numpy()

    features = []
    classifier_layer = module.classifier.classifier
    hook = classifier_layer.register_forward_hook(lambda m, i, o: features.append(i[0].detach()))
    predict_logits(module, encoded, len(splits.train), 0)
    hook.remove()
    order = np.argsort(-encoded.lengths, kind="stable")
    x = np.zeros((len(order), classifier_layer.in_features), dtype=np.float32)
    x[order] = features[0].numpy()
    z = x / (np.linalg.norm(x, axis=1).mean() + 1e-6)
    reference = LogisticRegression(max_iter=2000, random_state=0).fit(z, splits.train.labels).predict_proba(z)
    assert np.allclose(after, reference, atol=1e-4)  # features put back in row order, the fit folded in exactly
    shuffled = LogisticRegression(max_iter=2000, random_state=0).fit(z, splits.train.labels[::-1]).predict_proba(z)
    assert not np.allclose(after, shuffled, atol=1e-2)  # and the check above can tell a fit on misplaced rows


@pytest.mark.slow
def test_sixteen_texts_with_nothing_held_out_train_and_reload(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

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
    assert info["method"] == "full"  # the recipe's choice, as the config left method unset
    assert json.loads((run / "model" / "config.json").read_text())["num_hidden_layers"] == 3  # + the pooling layer
    assert info["thresholds"] in (None, [0.5]) and info["temperature"] == 1.0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 5  # the few-shot floor of epochs, one evaluation each
    assert json.loads((run / "metrics" / "validation.json").read_text())["n"] == 16  # the training texts
    saved = [json.loads(line) for line in (run / "predictions" / "test.jsonl").read_text().splitlines()]
    reloaded = Classifier.load(run).predict_logits([row["text"] for row in saved])
    assert np.allclose(reloaded, [row["logits"] for row in saved], atol=1e-4)
    plain = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()  # no distilora code needed
    batch = AutoTokenizer.from_pretrained(run / "model")([row["text"] for row in saved[:8]], padding=True,
                                                         truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        assert np.allclose(plain(**batch).logits.numpy(), [row["logits"] for row in saved[:8]], atol=1e-4)


@pytest.mark.slow
def test_mean_pooling_with_lora_saves_the_base_the_adapter_sits_on(tmp_path: Path) -> None:
    from distilora.config import build_config
    from distilora.inference.classifier import Classifier
    from distilora.training.runner import train

    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=32)
    data = write_tiny_reviews(tmp_path / "train.csv", 40, seed=2)
    cfg = build_config({"output_dir": str(tmp_path / "run"), "model": {"backbone": str(backbone), "pooling": "mean"},
                        "data": {"train": str(data), "max_length": 32},
                        "train": {"epochs": 1, "batch_size": 8}, "eval": {"report": False}})
    run = train(cfg)
    assert json.loads((run / "base" / "config.json").read_text())["num_hidden_layers"] == 3
    saved = [json.loads(line) for line in (run / "predictions" / "validation.jsonl").read_text().splitlines()]
    reloaded = Classifier.load(run).predict_logits([row["text"] for row in saved])
    assert np.allclose(reloaded, [row["logits"] for row in saved], atol=1e-4)
