"""The report's figures, each returned as PNG bytes (matplotlib Agg, imported only when a report is made)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]
MAX_CURVES = 8  # one-vs-rest curves beyond this are unreadable; the rest are summarised by the macro AUC


def _figure(width: float = 9.6, height: float = 3.8):  # the report's column is ~1,050 px wide at 110 dpi
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.25})
    return plt.subplots(1, 1, figsize=(width, height))


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def class_counts(summary: dict[str, Any]) -> bytes:
    """Each split's class shares side by side (shares, not counts, so a small test split is not a sliver next to
    a large train split); each split's size is in the legend and every bar is labelled with its count."""
    fig, ax = _figure()
    splits = {name: data for name, data in summary["splits"].items() if data.get("class_counts")}  # not unlabelled
    names = list(next(iter(splits.values()))["class_counts"])
    width = 0.8 / max(len(splits), 1)
    x = np.arange(len(names))
    for i, (split, data) in enumerate(splits.items()):
        counts = np.asarray([data["class_counts"].get(n, 0) for n in names], dtype=float)
        total = max(counts.sum(), 1.0)
        bars = ax.bar(x + i * width, counts / total, width, label=f"{split} (n={int(counts.sum()):,})",
                      color=PALETTE[i % len(PALETTE)])
        if len(names) * len(splits) <= 24:
            ax.bar_label(bars, labels=[f"{int(c):,}" for c in counts], fontsize=7, padding=1)
    ax.set_xticks(x + width * (len(splits) - 1) / 2, names, rotation=30 if len(names) > 4 else 0, ha="right")
    ax.set_ylabel("share of the split")
    ax.set_title("Classes per split (bar labels: counts)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside the bars, never on them
    return _png(fig)


def length_histogram(summary: dict[str, Any]) -> bytes:
    fig, ax = _figure()
    for i, (split, data) in enumerate(summary["splits"].items()):
        hist = data.get("words_histogram")
        if not hist:
            continue
        edges, counts = np.asarray(hist["edges"]), np.asarray(hist["counts"], dtype=float)
        share = counts / max(counts.sum(), 1)
        ax.step(edges[:-1], share, where="post", label=split, color=PALETTE[i % len(PALETTE)], linewidth=1.6)
    ax.set_xlabel("words per text")
    ax.set_ylabel("share of texts")
    ax.set_title("Text length distribution")
    ax.legend()
    return _png(fig)


def learning_curves(history: list[dict[str, Any]], metric: str, best_step: int | None = None) -> bytes:
    """Loss, the validation metric and the learning rate per evaluation, with the kept step marked."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9})
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12.0, 3.6))
    steps = [h["step"] for h in history]
    marker = "o-" if len(steps) <= 40 else "-"
    left.plot(steps, [h.get("train_loss") for h in history], marker, color=PALETTE[0], label="train loss")
    left.plot(steps, [h.get("val_loss") for h in history], marker, color=PALETTE[1], label="validation loss")
    left.set_title("Loss")
    middle.plot(steps, [h.get(f"val_{metric}") for h in history], marker, color=PALETTE[2],
                label=f"validation {metric.replace('_', ' ')}")
    if history and "val_accuracy" in history[0] and metric != "accuracy":
        middle.plot(steps, [h.get("val_accuracy") for h in history], "--", color=PALETTE[3], label="validation accuracy")
    middle.set_title("Validation metric")
    right.plot(steps, [h.get("lr") for h in history], marker, color=PALETTE[4 % len(PALETTE)], label="learning rate")
    right.set_title("Learning rate (at each evaluation)")
    right.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in (left, middle, right):
        if best_step is not None:
            ax.axvline(best_step, color="black", linestyle="--", linewidth=1, label=f"kept: step {best_step}")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def confusion(matrix: list[list[int]], names: list[str]) -> bytes:
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=float)
    normalised = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(names) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size * 0.85))
    for ax, data, title, fmt in ((axes[0], m, "Counts", "{:.0f}"), (axes[1], normalised, "Row-normalised (recall)", "{:.2f}")):
        ax.imshow(data, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        ax.grid(False)
        if len(names) <= 20:
            top = data.max() if data.max() > 0 else 1
            for (i, j), value in np.ndenumerate(data):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                        color="white" if value > top * 0.6 else "black")
    return _png(fig)


def roc_pr(y: np.ndarray, scores: np.ndarray, names: list[str]) -> bytes:
    """ROC and precision-recall curves, one per class (one-vs-rest), ``y`` as a 0/1 matrix [n, curves]."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    shown = 0
    for j, name in enumerate(names):
        if y[:, j].min() == y[:, j].max() or shown >= MAX_CURVES:
            continue
        color = PALETTE[shown % len(PALETTE)]
        fpr, tpr, _ = roc_curve(y[:, j], scores[:, j])
        precision, recall, _ = precision_recall_curve(y[:, j], scores[:, j])
        roc_ax.plot(fpr, tpr, color=color, label=name, linewidth=1.5)
        pr_ax.plot(recall, precision, color=color, label=name, linewidth=1.5)
        shown += 1
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.25)
    return _png(fig)


def probability_distribution(y_true: np.ndarray, score: np.ndarray, names: list[str], score_name: str) -> bytes:
    """Histogram of one score (e.g. P(positive)) for each true class: how well the classes separate."""
    fig, ax = _figure()
    bins = np.linspace(0, 1, 26)
    for c, name in enumerate(names[:MAX_CURVES]):
        values = score[y_true == c]
        if len(values):
            ax.hist(values, bins=bins, alpha=0.55, label=f"true {name}", color=PALETTE[c % len(PALETTE)],
                    weights=np.ones(len(values)) / len(values))
    ax.set_xlabel(score_name)
    ax.set_ylabel("share of the class")
    ax.set_title("Predicted probability per true class")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return _png(fig)


def reliability(before: dict[str, list[float]], after: dict[str, list[float]], ece_before: float, ece_after: float) -> bytes:
    fig, ax = _figure(6.0, 4.6)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    for bins, label, color in ((before, f"raw (ECE {ece_before:.3f})", PALETTE[1]),
                               (after, f"temperature-scaled (ECE {ece_after:.3f})", PALETTE[0])):
        keep = [i for i, n in enumerate(bins["count"]) if n]
        ax.plot([bins["confidence"][i] for i in keep], [bins["accuracy"][i] for i in keep], "o-", color=color, label=label)
        if color == PALETTE[0]:  # texts per bin, on the curve that is used
            for i in keep:
                ax.annotate(f"{bins['count'][i]:,}", (bins["confidence"][i], bins["accuracy"][i]), fontsize=6,
                            textcoords="offset points", xytext=(0, 5), ha="center", color=color)
    ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def threshold_curve(y: np.ndarray, score: np.ndarray, chosen: float, name: str) -> bytes:
    """Precision, recall and F1 as the decision threshold moves, with the run's threshold marked."""
    fig, ax = _figure()
    grid = np.linspace(0.01, 0.99, 99)
    pred = score[None, :] >= grid[:, None]
    tp = (pred & (y[None, :] == 1)).sum(1)
    fp = (pred & (y[None, :] == 0)).sum(1)
    precision = np.divide(tp, tp + fp, out=np.ones(len(grid)), where=(tp + fp) > 0)
    recall = tp / max(int(y.sum()), 1)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(grid)), where=(precision + recall) > 0)
    for values, label, color in ((precision, "precision", PALETTE[0]), (recall, "recall", PALETTE[1]), (f1, "F1", PALETTE[2])):
        ax.plot(grid, values, label=label, color=color)
    ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"chosen {chosen:.3f}")
    ax.set(xlabel=f"threshold on P({name})", ylabel="score", title=f"Threshold trade-off: {name}", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return _png(fig)
