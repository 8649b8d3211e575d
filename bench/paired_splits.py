"""Choose between two recipes on several validation splits at once: each pair A:B is the same two recipes trained
on one split of the training data (e.g. `data.seed` 42, 43, 44), scored on that split's validation texts.

    python bench/paired_splits.py runs/a-42:runs/b-42 runs/a-43:runs/b-43 runs/a-44:runs/b-44 --name my_choice

One 1,000-text validation split cannot tell two recipes 0.5 points apart (its 95% interval on a paired difference is
about +-0.8 points); k splits narrow it by about sqrt(k). Per pair: B minus A with its paired bootstrap interval
(as `distilora compare`); pooled: the mean of the k differences, its interval from the same resamples averaged over
the pairs. Validation splits drawn with different seeds share about a tenth of their texts, so the pooled interval
is a little narrower than fully independent splits would give. Only the validation split is read unless
`--split test` asks for the same table on test, to report after the choice, never to make it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

from distilora.evaluation.uncertainty import LEVEL, difference  # noqa: E402
from distilora.reporting.compare import scored_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="RUN_A:RUN_B, one per split")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--name", required=True, help="results file name (bench/results/<name>.json)")
    args = parser.parse_args()
    rows, gaps = [], []
    for pair in args.pairs:
        a, b = (scored_split(Path(p), args.split) for p in pair.split(":"))
        if a is None or b is None or a.keys != b.keys:
            raise SystemExit(f"{pair}: both runs need labelled {args.split} predictions of the same texts")
        runs = [a.resampled, b.resampled]
        for metric, change in difference(*runs).items():
            rows.append({"pair": pair, "metric": metric, "a": runs[0].point[metric], "b": runs[1].point[metric],
                         **change})
        gaps.append({m: runs[1].draws[m] - runs[0].draws[m] for m in runs[0].point})
    for metric in gaps[0]:
        mean = np.mean([g[metric] for g in gaps], axis=0)  # resample i of every split averaged: the pooled draw
        low, high = np.nanpercentile(mean, [(1 - LEVEL) / 2 * 100, (1 + LEVEL) / 2 * 100])
        point = float(np.mean([r["difference"] for r in rows if r["metric"] == metric]))
        rows.append({"pair": f"pooled over {len(gaps)}", "metric": metric, "difference": point, "low": float(low),
                     "high": float(high),
                     "verdict": "ahead" if low > 0 else "behind" if high < 0 else "within noise"})
    print_table(rows, ["pair", "metric", "a", "b", "difference", "low", "high", "verdict"])
    command = "python bench/paired_splits.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(args.name, {'command': command, 'rows': rows})}")


if __name__ == "__main__":
    main()
