"""Bootstrap intervals and paired differences (evaluation/uncertainty.py), checked against the split's own metrics."""
from __future__ import annotations

import numpy as np
import pytest

from distilora.evaluation.metrics import evaluate_logits
from distilora.evaluation.uncertainty import (bootstrap_counts, metric_intervals, paired_difference,
                                              weighted_scores)


def _logits_for(preds: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[preds] * 5.0


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 4)])
def test_unit_weights_reproduce_the_splits_own_metrics(task, k):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k - 1 if task == "multiclass" else k, 300)  # multiclass: the last class never occurs
    preds = np.where(rng.random(300) < 0.7, labels, rng.integers(0, k, 300))
    own = evaluate_logits(task, _logits_for(preds, k), labels, [f"c{i}" for i in range(k)])
    scores = weighted_scores(task, labels, preds, np.ones(300), k)
    for metric, values in scores.items():
        assert values[0] == pytest.approx(own[metric])


def test_unit_weights_reproduce_multilabel_metrics():
    rng = np.random.default_rng(1)
    labels = (rng.random((200, 5)) < 0.2).astype(int)
    preds = np.where(rng.random((200, 5)) < 0.8, labels, 1 - labels)
    own = evaluate_logits("multilabel", np.where(preds == 1, 4.0, -4.0), labels, list("abcde"))
    scores = weighted_scores("multilabel", labels, preds, np.ones(200), 5)
    for metric in ("subset_accuracy", "micro_f1", "macro_f1"):
        assert scores[metric][0] == pytest.approx(own[metric])


def test_counts_weigh_texts_as_if_repeated():
    rng = np.random.default_rng(2)
    labels, preds = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    counts = next(bootstrap_counts(50, resamples=1, seed=3))[0]
    assert counts.sum() == 50
    repeated = np.repeat(np.arange(50), counts)
    weighted = weighted_scores("multiclass", labels, preds, counts, 3)
    explicit = weighted_scores("multiclass", labels[repeated], preds[repeated], np.ones(len(repeated)), 3)
    assert weighted["macro_f1"][0] == pytest.approx(explicit["macro_f1"][0])
    assert weighted["accuracy"][0] == pytest.approx(explicit["accuracy"][0])


def test_interval_holds_the_value_and_narrows_with_more_texts():
    rng = np.random.default_rng(4)
    widths = []
    for n in (400, 10_000):
        labels = rng.integers(0, 2, n)
        preds = np.where(rng.random(n) < 0.8, labels, 1 - labels)
        interval = metric_intervals("binary", labels, preds, 2, resamples=500)["accuracy"]
        assert interval["low"] < interval["value"] < interval["high"]
        widths.append(interval["high"] - interval["low"])
    assert 3.5 < widths[0] / widths[1] < 6.5  # sqrt(25) = 5: a standard error shrinks with the square root of n


def test_paired_difference_tells_a_real_gap_from_a_few_texts():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 1000)
    a = np.where(rng.random(1000) < 0.8, labels, 1 - labels)
    few = a.copy()
    wrong = np.flatnonzero(a != labels)[:3]
    few[wrong] = labels[wrong]  # b fixes 3 of a's mistakes: 0.3 points
    many = a.copy()
    wrong = np.flatnonzero(a != labels)[:100]
    many[wrong] = labels[wrong]  # b fixes 100: 10 points
    assert paired_difference("binary", labels, a, few, 2)["accuracy"]["verdict"] == "within noise"
    gain = paired_difference("binary", labels, a, many, 2)["accuracy"]
    assert gain["verdict"] == "ahead" and gain["difference"] == pytest.approx(0.1)
    assert paired_difference("binary", labels, many, a, 2)["accuracy"]["verdict"] == "behind"
    same = paired_difference("binary", labels, a, a, 2)["f1"]
    assert same["difference"] == same["low"] == same["high"] == 0.0 and same["verdict"] == "within noise"


def test_pairing_is_tighter_than_two_separate_intervals():
    """Two runs that agree on most texts: the paired interval of their difference is much narrower than the
    intervals of the two scores, which is why the comparison pairs them."""
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.85, labels, 1 - labels)
    b = a.copy()
    b[:40] = labels[:40]
    single = metric_intervals("binary", labels, a, 2, resamples=500)["accuracy"]
    paired = paired_difference("binary", labels, a, b, 2, resamples=500)["accuracy"]
    assert (paired["high"] - paired["low"]) < 0.5 * (single["high"] - single["low"])
