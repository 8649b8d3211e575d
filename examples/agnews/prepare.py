"""Write AG News as two like-for-like files (columns text,label with class names) for the AG News example.

The shared training subset holds descriptions only (no header: description<TAB>label name), while the official
test file is a header-less CSV of class_index (1-4), title, description. For a like-for-like set-up the test side
keeps the description alone, and both sides get the same columns and class names. The few HTML-entity remnants
(` #39;` for an apostrophe, ` quot;`: each '&' became a space) and backslash line joins are repaired the same way on both sides, so
neither split sees a kind of noise the other does not. Files are written atomically (temporary file, then rename).

Run from the repository root (reads ../shared/data/agnews, writes examples/agnews/data/, which git ignores):

    python examples/agnews/prepare.py
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import pandas as pd

from distilora.runfolder import write_csv_atomic

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "data"
DEFAULT_OUTS = [HERE / "data" / "train.csv", HERE / "data" / "test.csv"]
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]  # test.csv's class_index 1..4, in this order
ENTITIES = {"quot;": '"', "amp;": "&", "lt;": "<", "gt;": ">"}  # named entities that lost their '&' the same way


def clean(text: str) -> str:
    """Undo the dataset's broken HTML entities (' #39;' -> "'") and backslash line joins; squeeze spaces."""
    # the source turned every '&' into a space ("isn&#39;t" -> "isn #39;t"): take that space back with the entity
    text = re.sub(r" ?#(\d+);", lambda m: chr(int(m.group(1))), text)
    for entity, char in ENTITIES.items():
        text = text.replace(" " + entity, char).replace(entity, char)
    return " ".join(text.replace("\\", " ").split())


def read_train(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", header=None, names=["text", "label"], quoting=csv.QUOTE_NONE,
                        dtype=str, keep_default_na=False)
    unknown = sorted(set(table["label"]) - set(CLASSES))
    if unknown:
        sys.exit(f"error: {path}: unexpected label(s) {unknown}; expected {CLASSES}")
    return table.assign(text=table["text"].map(clean))


def read_test(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, header=None, names=["class_index", "title", "description"], dtype=str,
                        keep_default_na=False)
    bad = table[~table["class_index"].isin(["1", "2", "3", "4"])]
    if len(bad):
        sys.exit(f"error: {path}: row {bad.index[0] + 1} has class_index {bad.iloc[0]['class_index']!r}; expected 1-4")
    labels = table["class_index"].astype(int).map(lambda i: CLASSES[i - 1])
    return pd.DataFrame({"text": table["description"].map(clean), "label": labels})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUTS[0].parent)
    args = parser.parse_args(argv)
    source = args.data_dir / "agnews"
    for name in ("train_subset_alps_dev.tsv", "test.csv"):
        if not (source / name).is_file():
            sys.exit(f"error: {source / name} not found; pass --data-dir pointing at the shared data folder")
    train = read_train(source / "train_subset_alps_dev.tsv")
    test = read_test(source / "test.csv")
    empty = [name for name, table in (("train", train), ("test", test)) if (table["text"] == "").any()]
    if empty:
        sys.exit(f"error: an empty description in the {empty[0]} file of {args.data_dir}; the data has changed")
    write_csv_atomic(args.out_dir / "train.csv", train.to_dict("records"), list(train.columns))
    write_csv_atomic(args.out_dir / "test.csv", test.to_dict("records"), list(test.columns))
    print(f"wrote {args.out_dir / 'train.csv'} ({len(train):,} rows) and {args.out_dir / 'test.csv'} ({len(test):,} rows)")


if __name__ == "__main__":
    main()
