"""In-domain unlabelled text for distillation: IMDB training reviews cut into sentences written the way SST-2 writes
them (lower case, punctuation and clitics split off by spaces, a trailing space), one per line.

    python bench/unlabeled_sentences.py examples/ship_sst2/data/imdb_sentences.txt

The IMDB reviews carry labels, which are not used: these texts get the teacher's soft targets only. Sentences of
3-50 tokens with at least 3 words, deduplicated; the SST-2 dev sentences are dropped by distilora itself (distill.unlabeled never keeps an
evaluation text).
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import require_data  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
PUNCTUATION = re.compile(r"([,.!?;:()\"])")
CLITIC = re.compile(r"(\w)('s|'re|'ve|'ll|'d|'m|n't)\b")


def sst_style(sentence: str) -> str:
    text = sentence.lower().replace("`", "'")
    text = CLITIC.sub(r"\1 \2", text)
    text = PUNCTUATION.sub(r" \1 ", text)
    return " ".join(text.split()) + " "


def main(out: Path) -> None:
    reviews = require_data("imdb", "train.csv")
    seen: set[str] = set()
    with reviews.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            for sentence in SENTENCE_END.split(row["review"].replace("<br />", " ")):
                text = sst_style(sentence)
                words = text.split()
                if 3 <= len(words) <= 50 and sum(word.isalpha() for word in words) >= 3:
                    seen.add(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = sorted(seen)
    out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    print(f"wrote {len(lines):,} sentences to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "examples/ship_sst2/data/imdb_sentences.txt"))
