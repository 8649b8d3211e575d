"""Bootstrap intervals and paired differences (evaluation/uncertainty.py), checked against the split's own metrics."""
from __future__ import annotations

import numpy as np
import pytest

from distilora.evaluation.metrics import evaluate_logits
from distilora.evaluation.uncertainty import bootstrap_counts, difference, intervals, resample, weighted_scores


def _probs_for(preds: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Probabilities whose argmax is preds, with some spread so that ranking metrics have ties to break."""
    logits = np.eye(k)[preds] * 3.0 + rng.random((len(preds), k))
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 4)])
def test_unit_weights_reproduce_the_splits_own_metrics(task, k):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k - 1 if task == "multiclass" else k, 300)  # multiclass: the last class never occurs
    probs = _probs_for(np.where(rng.random(300) < 0.7, labels, rng.integers(0, k, 300)), k, rng)
    own = evaluate_logits(task, np.log(probs), labels, [f"c{i}" for i in range(k)], thresholds=[0.4])
    scores = weighted_scores(task, labels, probs, [0.4], np.ones(300))
    assert set(scores) == ({"accuracy", "f1", "roc_auc", "pr_auc"} if task == "binary" else {"accuracy", "macro_f1"})
    for metric, values in scores.items():
        assert values[0] == pytest.approx(own[metric])


def test_unit_weights_reproduce_multilabel_metrics():
    rng = np.random.default_rng(1)
    labels = (rng.random((200, 5)) < 0.2).astype(int)
    preds = np.where(rng.random((200, 5)) < 0.8, labels, 1 - labels)
    logits = np.where(preds == 1, 4.0, -4.0)
    own = evaluate_logits("multilabel", logits, labels, list("abcde"))
    scores = weighted_scores("multilabel", labels, 1 / (1 + np.exp(-logits)), None, np.ones(200))
    for metric in ("subset_accuracy", "micro_f1", "macro_f1"):
        assert scores[metric][0] == pytest.approx(own[metric])


def test_counts_weigh_texts_as_if_repeated():
    rng = np.random.default_rng(2)
    counts = next(bootstrap_counts(50, resamples=1, seed=3))[0]
    assert counts.sum() == 50
    repeated = np.repeat(np.arange(50), counts)
    for task, k in (("multiclass", 3), ("binary", 2)):
        labels = rng.integers(0, k, 50)
        probs = _probs_for(rng.integers(0, k, 50), k, rng)
        weighted = weighted_scores(task, labels, probs, None, counts)
        explicit = weighted_scores(task, labels[repeated], probs[repeated], None, np.ones(len(repeated)))
        for metric in weighted:
            assert weighted[metric][0] == pytest.approx(explicit[metric][0])


def test_interval_holds_the_value_and_narrows_with_more_texts():
    rng = np.random.default_rng(4)
    widths = []
    for n in (400, 10_000):
        labels = rng.integers(0, 2, n)
        probs = _probs_for(np.where(rng.random(n) < 0.8, labels, 1 - labels), 2, rng)
        interval = intervals(resample("binary", labels, probs, None, resamples=500))["accuracy"]
        assert interval["low"] < interval["value"] < interval["high"]
        widths.append(interval["high"] - interval["low"])
    assert 3.5 < widths[0] / widths[1] < 6.5  # sqrt(25) = 5: a standard error shrinks with the square root of n


def test_paired_difference_tells_a_real_gap_from_a_few_texts():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 1000)
    a = np.where(rng.random(1000) < 0.8, labels, 1 - labels)
    few, many = a.copy(), a.copy()
    wrong = np.flatnonzero(a != labels)
    few[wrong[:3]] = labels[wrong[:3]]  # b fixes 3 of a's mistakes: 0.3 points
    many[wrong[:100]] = labels[wrong[:100]]  # b fixes 100: 10 points
    run_a, run_few, run_many = (resample("binary", labels, np.eye(2)[p] * 0.8 + 0.1, None, resamples=500)
                                for p in (a, few, many))
    assert difference(run_a, run_few)["accuracy"]["verdict"] == "within noise"
    gain = difference(run_a, run_many)
    assert gain["accuracy"]["verdict"] == "ahead" and gain["accuracy"]["difference"] == pytest.approx(0.1)
    assert gain["pr_auc"]["verdict"] == "ahead"
    assert difference(run_many, run_a)["accuracy"]["verdict"] == "behind"
    same = difference(run_a, run_a)["f1"]
    assert same["difference"] == same["low"] == same["high"] == 0.0 and same["verdict"] == "within noise"


def test_pairing_is_tighter_than_two_separate_intervals():
    """Two runs that agree on most texts: the paired interval of their difference is much narrower than the
    intervals of the two scores, which is why the comparison pairs them."""
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 2000)
    a = np.where(rng.random(2000) < 0.85, labels, 1 - labels)
    b = a.copy()
    b[:40] = labels[:40]
    run_a, run_b = (resample("binary", labels, np.eye(2)[p] * 0.8 + 0.1, None, resamples=500) for p in (a, b))
    single = intervals(run_a)["accuracy"]
    paired = difference(run_a, run_b)["accuracy"]
    assert (paired["high"] - paired["low"]) < 0.5 * (single["high"] - single["low"])


def test_ranking_metrics_of_every_resample_match_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(7)
    labels = (rng.random(300) < 0.3).astype(int)
    positive = np.round(np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1), 2)  # rounded: many tied scores
    probs = np.stack([1 - positive, positive], 1)
    counts = next(bootstrap_counts(300, resamples=20, seed=8))
    scores = weighted_scores("binary", labels, probs, None, counts)
    for i, w in enumerate(counts):
        assert scores["roc_auc"][i] == pytest.approx(roc_auc_score(labels, positive, sample_weight=w))
        assert scores["pr_auc"][i] == pytest.approx(average_precision_score(labels, positive, sample_weight=w))
    one_class = weighted_scores("binary", labels, probs, None, (labels == 1).astype(float))
    assert np.isnan(one_class["roc_auc"][0]) and np.isnan(one_class["pr_auc"][0])


def test_a_split_with_one_class_leaves_its_ranking_metrics_out_and_stays_valid_json():
    import json

    labels = np.ones(6, dtype=np.int64)
    probs = np.array([[0.1, 0.9], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    one_class = resample("binary", labels, probs, None, resamples=200)
    assert set(intervals(one_class)) == {"accuracy", "f1"}
    assert set(difference(one_class, one_class)) == {"accuracy", "f1"}
    json.dumps(intervals(one_class), allow_nan=False)
    labels[4] = 0  # one negative text, scored lowest: a third of the resamples lack it; the rest make the interval
    both = intervals(resample("binary", labels, probs, None, resamples=200))
    assert both["roc_auc"]["value"] == 1.0 and np.isfinite(both["roc_auc"]["low"])

