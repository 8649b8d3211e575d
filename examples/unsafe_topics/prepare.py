"""Build the unsafe-topic training file: AILuminate's hazard prompts plus a "safe" class from ToxicChat.

A config reads one training file, so this script merges the two sources into one CSV with columns text,label:
- every AILuminate demo prompt (prompt_text) labelled with its hazard code (hazard);
- a seeded sample of ToxicChat's non-toxic human-annotated training prompts (user_input where toxicity == 0),
  labelled "safe", about as many as one hazard class has (100 by default).
Texts are stripped; empty ones are dropped; a text that occurs more than once is kept once (a safe prompt that
equals a hazard prompt is dropped from the safe pool). The output is written atomically (temporary file, then
rename), so an interrupted run never leaves a half-written file behind.

It also writes unlabeled.csv beside it: every other ToxicChat training prompt (column text), none of them in the
labelled file, as teacher-only text for a distilled student (`distill.unlabeled`).

Run from the repository root (reads ../shared/data, writes examples/unsafe_topics/data/, which git ignores):

    python examples/unsafe_topics/prepare.py
    python examples/unsafe_topics/prepare.py --safe-rows 150 --seed 1 --out /tmp/unsafe_topics.csv
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
DEFAULT_OUT = HERE / "data" / "unsafe_topics.csv"
AILUMINATE = Path("ailuminate_demo") / "airr_official_1.0_demo_en_us_prompt_set_release.csv"
TOXICCHAT = Path("toxicchat0124") / "toxicchat0124_human_train.csv"
SAFE = "safe"


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        sys.exit(f"error: {path} not found; pass --data-dir pointing at the shared data folder")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        sys.exit(f"error: {path} has no column(s) {missing}; found {list(table.columns)}")
    return table


def build(data_dir: Path, *, safe_rows: int = 100, seed: int = 42) -> pd.DataFrame:
    """The combined table (columns text, label): hazard prompts first, then the sampled safe prompts."""
    hazards = _read(data_dir / AILUMINATE, ["prompt_text", "hazard"])
    hazards = pd.DataFrame({"text": hazards["prompt_text"].str.strip(), "label": hazards["hazard"].str.strip()})
    hazards = hazards[(hazards["text"] != "") & (hazards["label"] != "")]
    hazards = hazards.drop_duplicates("text", keep="first")
    if SAFE in set(hazards["label"]):
        sys.exit(f"error: {data_dir / AILUMINATE} already has a {SAFE!r} class")

    chats = _read(data_dir / TOXICCHAT, ["user_input", "toxicity"])
    pool = chats.loc[chats["toxicity"].str.strip() == "0", "user_input"].str.strip()
    pool = pool[(pool != "") & ~pool.isin(set(hazards["text"]))].drop_duplicates()
    if safe_rows > len(pool):
        sys.exit(f"error: --safe-rows {safe_rows} is more than the {len(pool)} distinct non-toxic prompts")
    safe = pool.sample(n=safe_rows, random_state=seed)
    combined = pd.concat([hazards, pd.DataFrame({"text": safe.to_numpy(), "label": SAFE})], ignore_index=True)
    return combined


def unlabeled(data_dir: Path, labelled: pd.DataFrame) -> pd.DataFrame:
    """Teacher-only texts for distillation (distill.unlabeled): every other ToxicChat training prompt, toxic or not,
    none of which is in the labelled file (so no validation or test prompt is ever scored for the student)."""
    chats = _read(data_dir / TOXICCHAT, ["user_input"])["user_input"].str.strip()
    rest = chats[(chats != "") & ~chats.isin(set(labelled["text"]))].drop_duplicates()
    return pd.DataFrame({"text": rest.to_numpy()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"CSV to write (default {DEFAULT_OUT})")
    parser.add_argument("--safe-rows", type=int, default=100, help="safe prompts to sample (default 100)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the safe-prompt sample (default 42)")
    parser.add_argument("--unlabeled-out", type=Path, default=None,
                        help="CSV of teacher-only prompts for distill.unlabeled (default: unlabeled.csv beside --out)")
    args = parser.parse_args(argv)
    if args.safe_rows <= 0:
        parser.error("--safe-rows must be positive")
    unlabeled_out = args.unlabeled_out or args.out.with_name("unlabeled.csv")
    if unlabeled_out.resolve() == args.out.resolve():
        parser.error(f"--unlabeled-out {unlabeled_out} would overwrite --out; name another file")
    table = build(args.data_dir, safe_rows=args.safe_rows, seed=args.seed)
    write_csv_atomic(args.out, table.to_dict("records"), list(table.columns))
    rest = unlabeled(args.data_dir, table)
    write_csv_atomic(unlabeled_out, rest.to_dict("records"), list(rest.columns))
    counts = table["label"].value_counts()
    print(f"wrote {args.out}: {len(table)} rows, {len(counts)} classes")
    print(", ".join(f"{label} {count}" for label, count in counts.sort_index().items()))
    print(f"wrote {unlabeled_out}: {len(rest)} unlabelled prompts (for distill.unlabeled)")


if __name__ == "__main__":
    main()
