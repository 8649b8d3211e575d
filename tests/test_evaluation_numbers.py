"""The numbers behind reports and decisions, against hand computations on tiny arrays."""
from __future__ import annotations

import numpy as np
import pytest

from distilora.config import EvalConfig
from distilora.evaluation.analysis import accuracy_by_length, confident_mistakes, confused_pairs, mistakes_table
from distilora.evaluation.calibration import fit_temperature, reliability_bins
from distilora.evaluation.decision import fit_decision
from distilora.evaluation.metrics import (classification_report_text, decide, evaluate_logits,
                                          expected_calibration_error, log_loss, probabilities)
from distilora.evaluation.thresholds import tune_threshold, tune_thresholds


def _logits_for(p_positive: np.ndarray) -> np.ndarray:
    return np.stack([np.zeros_like(p_positive), np.log(p_positive / (1 - p_positive))], axis=1)


def test_binary_metrics_match_a_hand_count():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.7])
    m = evaluate_logits("binary", _logits_for(p), y, ["neg", "pos"])
    # at 0.5: predictions 1,1,0,1,0,0,0,1 -> TP 3, FP 1, FN 1, TN 3
    assert m["confusion_matrix"] == [[3, 1], [1, 3]] and sum(map(sum, m["confusion_matrix"])) == m["n"] == 8
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75) and m["f1"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    # ROC-AUC by pairs: positives {.9,.8,.3,.7} vs negatives {.6,.2,.1,.4}: 14 of 16 pairs ranked right
    assert m["roc_auc"] == pytest.approx(14 / 16)
    assert m["macro_f1"] == pytest.approx(0.75) and m["per_class"]["neg"]["support"] == 4
    assert "precision    recall  f1-score   support" in classification_report_text(m, ["neg", "pos"])


def test_multiclass_confusion_and_macro_scores():
    y = np.array([0, 0, 1, 1, 2, 2])
    logits = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 5
    m = evaluate_logits("multiclass", logits, y, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # per class F1: a: p=1/2 r=1/2 -> .5; b: p=2/3 r=1 -> .8; c: p=1 r=1/2 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_multilabel_micro_macro_and_samples_f1():
    y = np.array([[1, 0], [1, 1], [0, 0]])
    preds_probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.1]])
    logits = np.log(preds_probs / (1 - preds_probs))
    m = evaluate_logits("multilabel", logits, y, ["x", "y"])
    # decisions: [1,0], [1,0], [1,0]; label x: TP 2 FP 1; label y: FN 1
    assert m["micro_precision"] == pytest.approx(2 / 3) and m["micro_recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["y"]["f1"] == 0.0 and m["macro_f1"] == pytest.approx(0.4)
    # rows: f1 1, 2/3, 0 -> mean 5/9
    assert m["samples_f1"] == pytest.approx(5 / 9) and m["subset_accuracy"] == pytest.approx(1 / 3)
    # 4 of 6 label cells right; no bare "accuracy" that could be read as the share of texts fully right
    assert m["label_accuracy"] == pytest.approx(4 / 6) and "accuracy" not in m
    assert "subset accuracy (every label of a text right) 0.3333" in classification_report_text(m, ["x", "y"])


def test_multilabel_f1_thresholds_keep_a_label_own_only_where_it_carries_over():
    rng = np.random.default_rng(0)
    n = 4000
    # label 0: common, its scores are shifted down, so its best threshold (~0.3) is far from the shared one and
    # holds on every half; label 1: 6 positives, whose own threshold would fit noise
    y = np.zeros((n, 3), dtype=bool)
    y[:, 0] = rng.random(n) < 0.3
    y[rng.choice(n, 6, replace=False), 1] = True
    y[:, 2] = rng.random(n) < 0.3
    probs = np.clip(np.where(y, 0.7, 0.3) + rng.normal(0, 0.12, y.shape), 0.001, 0.999)
    probs[:, 0] -= 0.2
    probs[:, 1] = np.clip(rng.random(n) * 0.5 + 0.2 * y[:, 1], 0, 1)  # rare and barely separable
    probs = np.clip(probs, 0.001, 0.999)
    shared = tune_threshold(y.ravel(), probs.ravel(), "f1")
    own = [tune_threshold(y[:, j], probs[:, j], "f1") for j in range(3)]
    t = tune_thresholds("multilabel", probs, y.astype(np.float32), "f1", 0.5)
    assert t[0] == pytest.approx(own[0]) and abs(own[0] - shared) > 0.1  # a real difference is kept
    assert t[1] == pytest.approx(shared) and own[1] != pytest.approx(shared)  # a fitted-to-noise one is not

    def micro_f1(thresholds):
        pred = probs >= np.asarray(thresholds)
        tp, fp, fn = (pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum()
        return 2 * tp / (2 * tp + fp + fn)
    assert micro_f1(t) >= micro_f1([shared] * 3)


# cutting below .95/.8/.6/.5/.3/.2 gives (precision, recall): (1,.25) (1,.5) (1,.75) (.75,.75) (.8,1) (.67,1); the
# threshold lies halfway to the next lower score, so no validation score sits on it
@pytest.mark.parametrize("rule, expected", [("f1", 0.25), ("precision:1.0", 0.55), ("precision:0.75", 0.25),
                                            ("recall:1.0", 0.25), ("recall:0.5", 0.7), ("none", 0.5)])
def test_threshold_rules_on_a_hand_made_set(rule, expected):
    scores = np.array([0.95, 0.8, 0.6, 0.5, 0.3, 0.2])
    y = np.array([1, 1, 1, 0, 1, 0])
    assert tune_threshold(y, scores, rule) == pytest.approx(expected)


def test_per_label_thresholds_and_multiclass_has_none():
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.2, 0.6], [0.6, 0.1]])
    labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    t = tune_thresholds("multilabel", probs, labels, "recall:1.0", 0.5)
    assert t == [pytest.approx(0.3), pytest.approx(0.4)]
    assert tune_thresholds("multiclass", probs, labels[:, 0], "f1", 0.5) is None
    assert decide("multilabel", probs, t).tolist() == [[1, 0], [1, 1], [0, 1], [1, 0]]


def test_ece_known_cases():
    confident_right = expected_calibration_error(np.full(10, 0.8), np.array([1] * 8 + [0] * 2))
    assert confident_right == pytest.approx(0.0)
    overconfident = expected_calibration_error(np.full(10, 1.0), np.array([1] * 5 + [0] * 5))
    assert overconfident == pytest.approx(0.5)
    bins = reliability_bins(np.array([0.05, 0.95, 0.95]), np.array([0, 1, 0]), n_bins=10)
    assert bins["count"][0] == 1 and bins["count"][9] == 2 and bins["accuracy"][9] == pytest.approx(0.5)


def test_temperature_scaling_lowers_nll_of_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    true_logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 2000)
    logits = np.stack([np.zeros(2000), 4 * true_logit], axis=1)  # 4x too sharp
    t = fit_temperature("binary", logits, y)
    assert 2.5 < t < 6
    assert log_loss("binary", probabilities("binary", logits, t), y) < log_loss("binary", probabilities("binary", logits), y)
    calibrated = np.stack([np.zeros(2000), true_logit * 2 / 1.5 ** 2 * 1.0], axis=1)
    assert fit_temperature("binary", calibrated, y) == pytest.approx(1.0, abs=0.25)


def test_fit_decision_uses_calibrated_probabilities():
    y = np.array([1, 1, 0, 0, 1, 0])
    logits = _logits_for(np.array([0.9, 0.7, 0.6, 0.2, 0.8, 0.1]))
    temperature, thresholds, note = fit_decision("binary", logits, y, EvalConfig(tune_threshold="f1", calibrate=False))
    assert temperature == 1.0 and thresholds == [pytest.approx(0.65)] and note["why"] == "eval.calibrate is off"


def test_a_temperature_is_kept_only_when_it_helps_held_out_validation_texts():
    from distilora.evaluation.calibration import checked_temperature

    kept_on_calibrated = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 600)
        true_logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 600)
        sharp = np.stack([np.zeros(600), 4 * true_logit], axis=1)  # 4x overconfident: scaling helps unseen texts
        t, note = checked_temperature("binary", sharp, y)
        assert 2.5 < t < 6 and note["kept"] and note["heldout_nll_after"] < note["heldout_nll_before"]
        calibrated = np.stack([np.zeros(600), true_logit * 2 / 1.5 ** 2], axis=1)  # the true log-odds already
        t, note = checked_temperature("binary", calibrated, y)
        kept_on_calibrated += note["kept"]
        assert note["kept"] or (t == 1.0 and "did not lower" in note["why"])
    assert kept_on_calibrated <= 2  # mostly left alone (seed 0's split happens to favour T = 0.78)
    t, note = checked_temperature("binary", sharp[:30], y[:30])  # the demo's 24-40 texts: too few to trust
    assert t == 1.0 and not note["kept"] and "30 validation texts are too few" in note["why"]


def test_error_analysis_helpers():
    texts = ["a b", "a b c d e f g h i j", "x", "y z"]
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    preds = probs.argmax(1)
    table = mistakes_table(texts, labels, probs, preds, ["neg", "pos"])
    assert [m["row"] for m in table] == [2, 1] and table[0]["p_true"] == 0.1
    mistakes = confident_mistakes(table)
    assert [m["text"] for m in mistakes] == ["a b c d e f g h i j", "a b"] and mistakes[0]["confidence"] == 0.9
    pairs = confused_pairs([[5, 2], [1, 3]], ["neg", "pos"])
    assert pairs[0] == {"true": "neg", "predicted": "pos", "count": 2, "share of true class": 2 / 7}
    buckets = accuracy_by_length(texts, labels, preds, edges=(0, 3, 8))
    assert buckets == [{"words": "0-2", "n": 3, "accuracy": pytest.approx(2 / 3)}, {"words": "8+", "n": 1, "accuracy": 0.0}]
