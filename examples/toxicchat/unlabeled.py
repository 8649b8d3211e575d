"""Write teacher-only texts for a distilled ToxicChat student (`distill.unlabeled`).

The ToxicChat release here has no prompts beyond its labelled train and test files, so the nearest unlabelled
text comes from the other shared sets, with their labels dropped:
- every AILuminate demo prompt (1,200 prompts written to a chatbot to draw out hazardous answers: the kind of
  input ToxicChat's rare toxic class holds);
- a seeded sample of the second Jigsaw file's Wikipedia comments (toxic and not, as they come).
A text that equals any ToxicChat prompt, train or test, is left out, so no test prompt is ever scored for the
student. The output has ToxicChat's own text column (user_input), so the config's column mapping reads it as is,
and is written atomically (temporary file, then rename).

Run from the repository root (reads ../shared/data, writes examples/toxicchat/data/, which git ignores):

    python examples/toxicchat/unlabeled.py
    python examples/toxicchat/unlabeled.py --comments 5000 --out /tmp/unlabeled.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from distilora.runfolder import write_csv_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = HERE / "data" / "unlabeled.csv"
AILUMINATE = Path("ailuminate_demo") / "airr_official_1.0_demo_en_us_prompt_set_release.csv"
JIGSAW = Path("jigsaw_toxic") / "train_part2_text_comment_2.csv"
TOXICCHAT = [Path("toxicchat0124") / f"toxicchat0124_human_{split}.csv" for split in ("train", "test")]
TEXT_COLUMN = "user_input"


def _column(path: Path, column: str) -> pd.Series:
    if not path.is_file():
        sys.exit(f"error: {path} not found; pass --data-dir pointing at the shared data folder")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if column not in table.columns:
        sys.exit(f"error: {path} has no column {column!r}; found {list(table.columns)}")
    return table[column].str.strip()


def build(data_dir: Path, *, comments: int = 2000, seed: int = 42) -> pd.DataFrame:
    """The teacher-only table (one column, user_input): the AILuminate prompts, then the sampled comments."""
    known = set(pd.concat([_column(data_dir / path, TEXT_COLUMN) for path in TOXICCHAT]))
    prompts = _column(data_dir / AILUMINATE, "prompt_text")
    pool = _column(data_dir / JIGSAW, "comment_text")
    pool = pool[pool != ""].drop_duplicates()
    if comments > len(pool):
        sys.exit(f"error: --comments {comments} is more than the {len(pool)} distinct comments in {JIGSAW}")
    texts = pd.concat([prompts, pool.sample(n=comments, random_state=seed)], ignore_index=True)
    texts = texts[(texts != "") & ~texts.isin(known)].drop_duplicates()
    return pd.DataFrame({TEXT_COLUMN: texts.to_numpy()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"CSV to write (default {DEFAULT_OUT})")
    parser.add_argument("--comments", type=int, default=2000, help="Jigsaw comments to sample (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the comment sample (default 42)")
    args = parser.parse_args(argv)
    if args.comments < 0:
        parser.error("--comments must be 0 or more")
    table = build(args.data_dir, comments=args.comments, seed=args.seed)
    write_csv_atomic(args.out, table.to_dict("records"), list(table.columns))
    print(f"wrote {args.out}: {len(table)} teacher-only texts (for distill.unlabeled)")


if __name__ == "__main__":
    main()
