"""Replays the decision threshold of finished binary runs from their saved validation and test logits: test F1 at
the threshold the run tuned on validation, at a plain 0.5, and under a "one standard error" rule (keep 0.5 unless
a threshold beats it on validation by more than the noise of validation F1). Shows when tuning pays off.

    python bench/threshold_replay.py RUN [RUN ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402


def _f1(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, scores >= threshold, zero_division=0))


def one_standard_error_threshold(labels: np.ndarray, scores: np.ndarray, default: float = 0.5) -> float:
    """0.5 when its validation F1 is within one standard error of the best threshold's, else the nearest
    threshold that is (F1's error approximated as a proportion over TP + (FP + FN) / 2 events)."""
    candidates = np.unique(scores)
    f1 = np.array([_f1(labels, scores, t) for t in candidates])
    best = int(np.argmax(f1))
    predicted = scores >= candidates[best]
    events = (predicted & labels).sum() + ((predicted & ~labels).sum() + (~predicted & labels).sum()) / 2
    se = float(np.sqrt(f1[best] * (1 - f1[best]) / max(events, 1)))
    if _f1(labels, scores, default) >= f1[best] - se:
        return default
    tied = np.flatnonzero(f1 >= f1[best] - se)
    return float(candidates[tied[np.argmin(np.abs(candidates[tied] - default))]])


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    from distilora.evaluation.metrics import probabilities
    from distilora.runfolder import RunFolder

    rows = []
    for run in sys.argv[1:]:
        folder = RunFolder(run)
        info = folder.info()
        if info.task != "binary":
            continue
        splits = {}
        for split in ("validation", "test"):
            records = folder.predictions(split)
            labels = np.array([r["label"] for r in records]) == 1
            splits[split] = labels, probabilities("binary", np.array([r["logits"] for r in records]), info.temperature)[:, 1]
        (val_y, val_p), (test_y, test_p) = splits["validation"], splits["test"]
        tuned, se_rule = info.thresholds[0], one_standard_error_threshold(val_y, val_p)
        rows.append({"run": Path(run).name[-48:], "val_pos": f"{int(val_y.sum())}/{len(val_y)}",
                     "tuned_t": tuned, "f1_tuned": _f1(test_y, test_p, tuned), "f1_0.5": _f1(test_y, test_p, 0.5),
                     "se_rule_t": se_rule, "f1_se_rule": _f1(test_y, test_p, se_rule)})
    print_table(rows, list(rows[0]))
    print(f"wrote {write_results('threshold_replay', {'rows': rows})}")


if __name__ == "__main__":
    main()
