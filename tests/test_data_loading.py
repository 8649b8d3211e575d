"""Data layer happy paths: every format and label layout, seeded stratified splits, subsampling, balancing,
auxiliary teacher scores, prediction inputs and the data summary."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distilora.config import DataConfig, DistillConfig
from distilora.data.labels import LabelSpace
from distilora.data.loading import label_strata, load_eval_split, load_splits, read_texts
from distilora.data.readers import read_table
from distilora.data.sampling import balance_indices, stratified_split, stratified_subsample
from distilora.data.summary import summarize_splits

POSITIVE = ["great phone", "love this app", "works perfectly", "really happy", "fast and reliable", "superb value"]
NEGATIVE = ["broken on arrival", "awful support", "crashes daily", "waste of money", "very slow", "refund please"]


def write_csv(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> str:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def sentiment_rows(n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        words = POSITIVE if i % 2 else NEGATIVE
        rows.append([f"{words[i % len(words)]} #{i}", "positive" if i % 2 else "negative"])
    return rows


def test_bundled_demo_is_used_when_no_files_are_given():
    splits = load_splits(DataConfig())
    assert splits.label_space == LabelSpace(("negative", "positive"), "binary")
    assert len(splits.train) + len(splits.validation) == 400
    assert len(splits.test) == 120
    assert splits.train.labels.dtype == np.int64
    all_texts = splits.train.texts + splits.validation.texts + splits.test.texts
    assert len(set(all_texts)) == len(all_texts), "demo texts must be unique across splits"
    counts = np.bincount(splits.test.labels)
    assert min(counts) / max(counts) > 0.7, "demo test set should be roughly balanced"
    for text in all_texts:
        assert 5 <= len(text.split()) <= 30


def test_csv_split_is_stratified_seeded_and_disjoint(tmp_path):
    rows = [[f"text {i}", "spam" if i % 5 == 0 else "ham"] for i in range(200)]
    cfg = DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows), validation_fraction=0.2,
                     test_fraction=0.1, seed=3)
    splits = load_splits(cfg)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (140, 40, 20)
    assert np.bincount(splits.validation.labels).tolist() == [32, 8]
    assert np.bincount(splits.test.labels).tolist() == [16, 4]
    seen = np.concatenate([splits.train.rows, splits.validation.rows, splits.test.rows])
    assert sorted(seen.tolist()) == list(range(1, 201))
    for split in (splits.train, splits.validation, splits.test):  # rows point back at the source line
        assert all(text == f"text {row - 1}" for text, row in zip(split.texts, split.rows))
    again = load_splits(cfg)
    assert again.validation.rows.tolist() == splits.validation.rows.tolist()
    other = load_splits(cfg.model_copy(update={"seed": 4}))
    assert other.validation.rows.tolist() != splits.validation.rows.tolist()


def test_numeric_labels_sort_numerically_and_one_is_positive(tmp_path):
    rows = [[f"t{i}", str(i % 2)] for i in range(20)]
    splits = load_splits(DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows)))
    assert splits.label_space.names == ("0", "1")
    assert splits.label_space.task == "binary"
    positives = [t for t, y in zip(splits.train.texts, splits.train.labels) if y == 1]
    assert all(int(t[1:]) % 2 == 1 for t in positives)
    multi = [[f"t{i}", str([2, 10, 9][i % 3])] for i in range(30)]
    splits = load_splits(DataConfig(train=write_csv(tmp_path / "m.csv", ["text", "label"], multi)))
    assert splits.label_space == LabelSpace(("2", "9", "10"), "multiclass")


def test_configured_label_order_file_and_na_text(tmp_path):
    rows = [["NA", "toxic"], ["fine words", "non-toxic"]] * 10
    (tmp_path / "labels.txt").write_text("non-toxic\ntoxic\n", encoding="utf-8")
    cfg = DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows), labels=str(tmp_path / "labels.txt"))
    splits = load_splits(cfg)
    assert splits.label_space.names == ("non-toxic", "toxic")
    na_rows = [y for t, y in zip(splits.train.texts, splits.train.labels) if t == "NA"]
    assert na_rows and set(na_rows) == {1}, "the string 'NA' is text, not a missing value"


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "json_array", "parquet", "datasets"])
def test_other_formats_give_the_same_splits(tmp_path, fmt):
    rows = sentiment_rows(30)
    frame = pd.DataFrame(rows, columns=["text", "label"])
    if fmt == "tsv":
        path = write_csv(tmp_path / "t.tsv", ["text", "label"], rows, delimiter="\t")
    elif fmt == "jsonl":
        path = str(tmp_path / "t.jsonl")
        Path(path).write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")), encoding="utf-8")
    elif fmt == "json_array":
        path = str(tmp_path / "t.json")
        Path(path).write_text(json.dumps(frame.to_dict("records")), encoding="utf-8")
    elif fmt == "parquet":
        path = str(tmp_path / "t.parquet")
        frame.to_parquet(path)
    else:
        import datasets

        path = str(tmp_path / "saved")
        datasets.DatasetDict({"train": datasets.Dataset.from_pandas(frame)}).save_to_disk(path)
    reference = load_splits(DataConfig(train=write_csv(tmp_path / "ref.csv", ["text", "label"], rows)))
    splits = load_splits(DataConfig(train=path))
    assert splits.train.texts == reference.train.texts
    assert splits.train.labels.tolist() == reference.train.labels.tolist()


def test_headerless_file_with_column_names_and_quoting_none(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("".join(f'he said "{w}\t{i % 2}\n' for i, w in enumerate(POSITIVE + NEGATIVE)), encoding="utf-8")
    cfg = DataConfig(train=str(path), header=False, column_names=["sentence", "label"], text_column="sentence",
                     quoting="none")
    table = read_table(str(path), cfg)
    assert list(table.columns) == ["sentence", "label"] and len(table) == 12
    assert table["sentence"][0] == 'he said "great phone'
    splits = load_splits(cfg)
    assert len(splits.train) + len(splits.validation) == 12


def test_multilabel_from_01_columns(tmp_path):
    rows = [[f"t{i}", i % 2, int(i % 3 == 0), int(i % 5 == 0)] for i in range(40)]
    cfg = DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "a", "b", "c"], rows), label_column=["a", "b", "c"])
    splits = load_splits(cfg)
    assert splits.label_space == LabelSpace(("a", "b", "c"), "multilabel")
    assert splits.train.labels.dtype == np.float32 and splits.train.labels.shape[1] == 3
    for text, labels in zip(splits.train.texts, splits.train.labels):
        i = int(text[1:])
        assert labels.tolist() == [i % 2, int(i % 3 == 0), int(i % 5 == 0)]


def test_multilabel_from_separated_names_and_json_lists(tmp_path):
    separated = [[f"t{i}", "sports;news" if i % 2 else "tech"] for i in range(20)]
    cfg = DataConfig(train=write_csv(tmp_path / "s.csv", ["text", "label"], separated), label_separator=";")
    splits = load_splits(cfg)
    assert splits.label_space == LabelSpace(("news", "sports", "tech"), "multilabel")
    json_rows = [[f"t{i}", json.dumps(["sports", "news"] if i % 2 else ["tech"])] for i in range(20)]
    from_json = load_splits(DataConfig(train=write_csv(tmp_path / "j.csv", ["text", "label"], json_rows)))
    assert from_json.label_space == splits.label_space
    assert from_json.train.labels.tolist() == splits.train.labels.tolist()


def test_index_encoded_multilabel_like_goemotions(tmp_path):
    (tmp_path / "labels.txt").write_text("joy\nanger\nfear\n", encoding="utf-8")
    rows = [[f"t{i}", "0,2" if i % 2 else "1"] for i in range(20)]
    cfg = DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows), label_encoding="index",
                     labels=str(tmp_path / "labels.txt"), label_separator=",")
    splits = load_splits(cfg)
    assert splits.label_space.names == ("joy", "anger", "fear")
    for text, labels in zip(splits.train.texts, splits.train.labels):
        assert labels.tolist() == ([1, 0, 1] if int(text[1:]) % 2 else [0, 1, 0])


def test_multilabel_split_keeps_rare_labels_in_validation():
    labels = np.zeros((100, 3), dtype=np.float32)
    labels[:, 0] = 1
    labels[::10, 2] = 1  # rare label on 10 rows
    strata = label_strata(labels)
    assert (strata[::10] == 2).all() and (np.delete(strata, np.s_[::10]) == 0).all()
    rest, held = stratified_split(strata, [0.2], seed=0)
    assert labels[held, 2].sum() == 2


def test_text_pairs_and_validation_file(tmp_path):
    rows = [[f"prompt {i}", f"reply {i}", "bad" if i % 3 == 0 else "good"] for i in range(30)]
    train = write_csv(tmp_path / "train.csv", ["prompt", "response", "verdict"], rows)
    val = write_csv(tmp_path / "val.csv", ["prompt", "response", "verdict"], rows[:6])
    cfg = DataConfig(train=train, validation=val, text_column="prompt", text_pair_column="response",
                     label_column="verdict")
    splits = load_splits(cfg)
    assert len(splits.train) == 30 and len(splits.validation) == 6 and splits.test is None
    assert splits.validation.pairs == [f"reply {i}" for i in range(6)]
    assert splits.validation.source == val


def test_train_size_subsamples_training_split_only_and_stratified(tmp_path):
    rows = [[f"t{i}", "rare" if i % 10 == 0 else "common"] for i in range(400)]
    cfg = DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows), train_size=50)
    splits = load_splits(cfg)
    assert len(splits.train) == 50 and len(splits.validation) == 40
    assert np.bincount(splits.train.labels).tolist() == [45, 5]


def test_test_size_samples_the_test_split_stratified_and_seeded(tmp_path):
    rows = [[f"t{i}", "rare" if i % 10 == 0 else "common"] for i in range(300)]
    train = write_csv(tmp_path / "train.csv", ["text", "label"], rows)
    test = write_csv(tmp_path / "test.csv", ["text", "label"], rows)
    splits = load_splits(DataConfig(train=train, test=test, test_size=40))
    assert len(splits.train) == 270 and np.bincount(splits.test.labels).tolist() == [36, 4]
    again = load_splits(DataConfig(train=train, test=test, test_size=40))
    assert again.test.rows.tolist() == splits.test.rows.tolist()
    assert len(load_splits(DataConfig(train=train, test=test, test_size=1000)).test) == 300


def test_balance_down_and_up_on_training_split_only(tmp_path):
    rows = [[f"t{i}", "rare" if i % 4 == 0 else "common"] for i in range(200)]
    path = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    down = load_splits(DataConfig(train=path, balance="down"))
    assert np.bincount(down.train.labels).tolist() == [45, 45]
    assert np.bincount(down.validation.labels).tolist() == [15, 5]
    up = load_splits(DataConfig(train=path, balance="up"))
    assert np.bincount(up.train.labels).tolist() == [135, 135]
    assert len(set(up.train.texts)) == 180, "up-sampling repeats rows, it does not invent them"


def test_sampling_helpers_are_seeded_and_exact():
    strata = np.array([0] * 90 + [1] * 9 + [2])
    rest, val, test = stratified_split(strata, [0.1, 0.1], seed=1)
    assert len(val) == 10 and len(test) == 10 and len(rest) == 80
    assert 99 in rest, "a class with a single row stays in the training part"
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(100))
    again = stratified_split(strata, [0.1, 0.1], seed=1)
    assert all((a == b).all() for a, b in zip(again, (rest, val, test)))
    sub = stratified_subsample(strata, 20, seed=0)
    assert len(sub) == 20 and len(set(sub.tolist())) == 20 and (strata[sub] == 1).sum() >= 1
    balanced = balance_indices(np.array([0, 0, 0, 1]), "up", seed=0)
    assert np.bincount(np.array([0, 0, 0, 1])[balanced]).tolist() == [3, 3]


def test_aux_scores_from_named_pairs_and_missing_column_in_validation(tmp_path):
    names = ["violence", "hate"]
    rows = []
    for i in range(20):
        cell = "" if i % 5 == 4 else json.dumps([["hate", i / 100], ["violence", 1 - i / 100]])
        rows.append([f"t{i}", str(i % 2), cell])
    train = write_csv(tmp_path / "train.csv", ["text", "label", "scores"], rows)
    val = write_csv(tmp_path / "val.csv", ["text", "label"], [["v0", "0"], ["v1", "1"]])
    splits = load_splits(DataConfig(train=train, validation=val), DistillConfig(aux_column="scores"))
    assert splits.aux_names == ["hate", "violence"]
    for text, aux in zip(splits.train.texts, splits.train.aux):
        i = int(text[1:])
        if i % 5 == 4:
            assert np.isnan(aux).all()
        else:
            assert aux == pytest.approx([i / 100, 1 - i / 100])
    assert splits.validation.aux.shape == (2, 2) and np.isnan(splits.validation.aux).all()
    ordered = load_splits(DataConfig(train=train, validation=val), DistillConfig(aux_column="scores", aux_names=names))
    assert ordered.aux_names == names
    first = ordered.train.texts.index("t1")
    assert ordered.train.aux[first] == pytest.approx([0.99, 0.01])


def test_aux_scores_as_plain_number_lists(tmp_path):
    rows = [[f"t{i}", str(i % 2), json.dumps([0.1 * (i % 3), 0.5, 1.0])] for i in range(10)]
    path = write_csv(tmp_path / "t.csv", ["text", "label", "aux"], rows)
    splits = load_splits(DataConfig(train=path, validation_fraction=0.2), DistillConfig(aux_column="aux",
                                                                                        aux_names=["x", "y", "z"]))
    assert splits.train.aux.dtype == np.float32 and splits.train.aux.shape == (8, 3)
    assert splits.train.aux[:, 2].tolist() == [1.0] * 8


def test_eval_split_maps_into_given_label_space(tmp_path):
    space = LabelSpace(("negative", "positive"), "binary")
    path = write_csv(tmp_path / "extra.csv", ["text", "label"], [["meh", "negative"], ["yay", "positive"]])
    split = load_eval_split(DataConfig(), path, space)
    assert split.name == "extra" and split.labels.tolist() == [0, 1] and split.rows.tolist() == [1, 2]
    unlabelled = write_csv(tmp_path / "nolabel.csv", ["text"], [["meh"], ["yay"]])
    split = load_eval_split(DataConfig(), unlabelled, space, name="u", require_labels=False)
    assert split.labels is None and split.texts == ["meh", "yay"]


def test_read_texts_from_table_and_plain_lines(tmp_path):
    path = write_csv(tmp_path / "in.csv", ["id", "text"], [["1", "first text"], ["2", "second, with comma"]])
    split = read_texts(path, DataConfig())
    assert split.texts == ["first text", "second, with comma"] and split.labels is None
    lines = tmp_path / "in.txt"
    lines.write_text("one text\n\nanother, text\twith tab\n", encoding="utf-8")
    split = read_texts(str(lines), DataConfig())
    assert split.texts == ["one text", "another, text\twith tab"] and split.rows.tolist() == [1, 3]


def test_summary_counts_lengths_and_is_json(tmp_path):
    rows = [["one two three", "a"], ["four five", "b"], ["six", "a"], ["seven eight nine ten", "b"]] * 5
    splits = load_splits(DataConfig(train=write_csv(tmp_path / "t.csv", ["text", "label"], rows),
                                    validation_fraction=0.2))
    summary = json.loads(json.dumps(summarize_splits(splits)))
    train = summary["splits"]["train"]
    assert train["rows"] == 16 and sum(train["class_counts"].values()) == 16
    assert summary["splits"]["validation"]["class_counts"] == {"a": 2, "b": 2}
    assert train["words"]["min"] == 1 and train["words"]["max"] == 4
    assert sum(train["words_histogram"]["counts"]) == 16
    assert "test" not in summary["splits"]
