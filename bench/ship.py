"""Train big, ship small, measured: run (or continue) `distilora ship` for a config and write its comparison to
bench/results/ship_<task>.json with the machine, the command, and per model and engine: params, test metrics,
training seconds and samples/s at batch 32 (timed now, one engine after another, in this process).

    python bench/ship.py examples/ship_sst2/config.yaml --task sst2
    python bench/ship.py examples/ship_sst2/config.yaml --task sst2 --set ship.teacher=runs/my-teacher

Finished stages are reused (their configs must match), so running this after `distilora ship` only re-times.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--task", required=True, help="Name of the results file: bench/results/ship_<task>.json")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    args = parser.parse_args()

    import json

    from distilora.config import load_config
    from distilora.pipeline import ship
    from distilora.runfolder import ShipFolder

    folder = ShipFolder(ship(load_config(args.config, args.overrides)))
    summary = json.loads(folder.ship_json.read_text(encoding="utf-8"))
    columns = ["run", "engine", "backbone", "total_params", "accuracy", "f1", "roc_auc", "train_seconds",
               "samples_per_s_batch32", "ms_one_text_p50"]
    print_table(summary["models"], columns)
    command = " ".join(["python bench/ship.py", str(args.config), "--task", args.task,
                        *(["--set", *args.overrides] if args.overrides else [])])
    print(f"wrote {write_results(f'ship_{args.task}', {'command': command, **summary})}")


if __name__ == "__main__":
    main()
