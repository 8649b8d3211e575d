"""User mistakes in data and data config: each gives a one-line DistiloraError naming file, row, column or field
and saying what to do."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from distilora.config import DataConfig, DistillConfig
from distilora.data.labels import LabelSpace
from distilora.data.loading import load_eval_split, load_splits, read_texts
from distilora.data.readers import read_table
from distilora.errors import ConfigError, DataError, DistiloraError


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_text(text, encoding=encoding)
    return str(path)


def good_csv(path: Path, n: int = 12, header: str = "text,label") -> str:
    return write(path, header + "\n" + "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(n)))


def raises(match: str, call, *args, error: type[DistiloraError] = DataError, **kwargs) -> str:
    with pytest.raises(error, match=match) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, f"error messages are one line: {message!r}"
    return message


@pytest.mark.parametrize("field", ["train", "validation", "test"])
def test_missing_file_names_the_config_field(tmp_path, field):
    paths = {"train": good_csv(tmp_path / "train.csv"), field: str(tmp_path / "nope.csv")}
    message = raises(rf"^data\.{field}: .*nope\.csv not found", load_splits, DataConfig(**paths))
    assert "fix the path" in message


def test_missing_extensionless_path_in_a_local_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    raises(r"^data\.train: data/reviews not found", load_splits, DataConfig(train="data/reviews"))


def test_missing_column_lists_columns_and_closest_match(tmp_path):
    path = good_csv(tmp_path / "t.csv", header="Text,label")
    message = raises(r"no column 'text' \(set by data\.text_column\)", load_splits, DataConfig(train=path))
    assert "'Text', 'label'" in message and "did you mean 'Text'?" in message
    message = raises(r"no column 'lable'", load_splits, DataConfig(train=path, text_column="Text",
                                                                   label_column="lable"))
    assert "did you mean 'label'?" in message and "data.label_column" in message
    raises(r"no column 'tags'", load_splits, DataConfig(train=path, text_column="Text", label_column="tags",
                                                        label_separator=","))
    raises(r"no column 'b'", load_splits, DataConfig(train=path, text_column="Text", label_column=["label", "b"]))


def test_empty_and_whitespace_text_cells_give_file_row_and_column(tmp_path):
    path = write(tmp_path / "t.csv", 'text,label\nfine,pos\nalso fine,neg\n"   ",pos\n,neg\nok,pos\n')
    message = raises(r"t\.csv: row 3, column 'text': the text is empty \(1 more rows like it\); drop the row or fill",
                     load_splits, DataConfig(train=path))
    assert path in message


def test_multiline_cells_count_as_one_row(tmp_path):
    path = write(tmp_path / "t.csv", 'text,label\n"line one\nline two",pos\nfine,neg\n"  ",pos\n')
    raises(r"row 3, column 'text'", load_splits, DataConfig(train=path))


def test_non_text_cell_where_text_is_expected(tmp_path):
    lines = [{"text": "fine", "label": "a"}, {"text": 3.5, "label": "b"}, {"text": "ok", "label": "a"}]
    path = write(tmp_path / "t.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    raises(r"t\.jsonl: row 2, column 'text': expected text, found float 3\.5; check data\.text_column",
           load_splits, DataConfig(train=path))
    lines[1] = {"text": None, "label": "b"}
    path = write(tmp_path / "n.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    raises(r"n\.jsonl: row 2, column 'text': the text is empty", load_splits, DataConfig(train=path))


def test_label_unseen_in_training_is_reported_with_known_labels(tmp_path):
    train = good_csv(tmp_path / "train.csv")
    val = write(tmp_path / "val.csv", "text,label\na,pos\nb,neutral\n")
    message = raises(r"val\.csv: row 2, column 'label': label 'neutral' is not one of the training labels "
                     r"\['neg', 'pos'\]", load_splits, DataConfig(train=train, validation=val))
    assert "fix the row" in message
    test = write(tmp_path / "test.csv", "text,label\na,pos\nb,neg\nc,POS\n")
    raises(r"test\.csv: row 3, column 'label': label 'POS'", load_splits, DataConfig(train=train, test=test))
    raises(r"test\.csv: row 3, column 'label': label 'POS'", load_eval_split, DataConfig(), test,
           LabelSpace(("neg", "pos"), "binary"))


def test_label_outside_configured_labels(tmp_path):
    path = good_csv(tmp_path / "t.csv")
    raises(r"row 2, column 'label': label 'pos' is not one of the training labels \['neg', 'other'\]",
           load_splits, DataConfig(train=path, labels=["neg", "other"]))


def test_single_class_training_set(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\n" + "".join(f"t{i},1\n" for i in range(10)))
    message = raises(r"t\.csv: column 'label' holds a single class \['1'\]", load_splits, DataConfig(train=path))
    assert "at least two classes" in message
    message = raises(r"t\.csv: every training row has label '1'", load_splits,
                     DataConfig(train=path, labels=["0", "1"]))
    assert "add rows of the other classes" in message


def test_unreadable_encoding_says_to_set_data_encoding(tmp_path):
    path = tmp_path / "t.csv"
    texts = ["caf\u00e9 ok", "caf\u00e9 two", "na\u00efve", "na\u00efve two"]
    path.write_bytes(("text,label\n" + "".join(f"{t},{t[0]}\n" for t in texts)).encode("latin-1"))
    raises(r"t\.csv: not readable as utf-8 text .*set data\.encoding", load_splits, DataConfig(train=str(path)))
    splits = load_splits(DataConfig(train=str(path), encoding="latin-1", validation_fraction=0.5))
    assert sorted(splits.train.texts + splits.validation.texts) == texts
    raises(r"data\.encoding: unknown encoding 'klingon'", load_splits, DataConfig(train=str(path), encoding="klingon"))


def test_empty_file_and_header_only_file(tmp_path):
    raises(r"empty\.csv: the file is empty", load_splits, DataConfig(train=write(tmp_path / "empty.csv", "")))
    raises(r"blank\.csv: the file is empty", load_splits, DataConfig(train=write(tmp_path / "blank.csv", "\n\n")))
    raises(r"empty\.jsonl: the file is empty", load_splits, DataConfig(train=write(tmp_path / "empty.jsonl", " \n")))
    raises(r"head\.csv: has a header but no data rows", load_splits,
           DataConfig(train=write(tmp_path / "head.csv", "text,label\n")))


def test_multilabel_01_column_with_other_values(tmp_path):
    path = write(tmp_path / "t.csv", "text,a,b\nx,1,0\ny,0,yes\nz,1,1\n")
    raises(r"t\.csv: row 2, column 'b': expected 0 or 1 in a multi-label column, found 'yes'", load_splits,
           DataConfig(train=path, label_column=["a", "b"]))


def test_index_label_out_of_range_and_not_an_index(tmp_path):
    labels = write(tmp_path / "labels.txt", "joy\nanger\n")
    path = write(tmp_path / "t.tsv", "text\tlabel\nhi\t0\nho\t1,5\n")
    cfg = DataConfig(train=path, labels=labels, label_encoding="index", label_separator=",")
    raises(r"t\.tsv: row 2, column 'label': index 5 is out of range for 2 labels \(0\.\.1\)", load_splits, cfg)
    path = write(tmp_path / "u.tsv", "text\tlabel\nhi\t0\nho\tjoy\n")
    raises(r"u\.tsv: row 2, column 'label': 'joy' is not a class index", load_splits,
           cfg.model_copy(update={"train": path}))
    raises(r"data\.label_encoding is 'index' but data\.labels is empty", load_splits,
           cfg.model_copy(update={"labels": None}), error=ConfigError)


def test_empty_label_cell(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,x\nb,\nc,y\n")
    raises(r"t\.csv: row 2, column 'label': the label is empty", load_splits, DataConfig(train=path))


def test_config_combinations_that_cannot_work(tmp_path):
    path = good_csv(tmp_path / "t.csv")
    raises(r"data\.labels: .*missing\.txt not found", load_splits,
           DataConfig(train=path, labels=str(tmp_path / "missing.txt")), error=ConfigError)
    raises(r"data\.task is 'binary' but the labels are multi-label", load_splits,
           DataConfig(train=path, task="binary", label_separator=";"), error=ConfigError)
    multi = write(tmp_path / "m.csv", "text,a,b\n" + "".join(f"t{i},{i % 2},1\n" for i in range(10)))
    raises(r"data\.balance: re-balancing is for single-label tasks", load_splits,
           DataConfig(train=multi, label_column=["a", "b"], balance="down"), error=ConfigError)
    tiny = write(tmp_path / "tiny.csv", "text,label\na,x\nb,y\n")
    raises(r"tiny\.csv: 2 rows are too few to hold out a validation split", load_splits, DataConfig(train=tiny))


def test_unparseable_files(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,x\nb,y,extra\n")
    raises(r"t\.csv: cannot split rows into columns \(Expected 2 fields in line 3, saw 3\); check data\.delimiter",
           load_splits, DataConfig(train=path))
    raises(r"t\.jsonl: line 2 is not valid JSON", load_splits,
           DataConfig(train=write(tmp_path / "t.jsonl", '{"text": "a", "label": "x"}\n{"text": \n')))
    raises(r"a\.jsonl: line 2 is a str, not an object", load_splits,
           DataConfig(train=write(tmp_path / "a.jsonl", '{"text": "a", "label": "x"}\n"just text"\n')))
    raises(r"b\.json: item 1 is a list, not an object", load_splits,
           DataConfig(train=write(tmp_path / "b.json", '[["a", "x"]]')))
    raises(r"t\.xlsx: cannot tell the file format", load_splits, DataConfig(train=write(tmp_path / "t.xlsx", "x")))
    raises(r"t\.parquet: not a readable Parquet file", load_splits,
           DataConfig(train=write(tmp_path / "t.parquet", "not parquet")))
    raises(r"w\.csv: some rows have more fields than the header; check data\.delimiter", load_splits,
           DataConfig(train=write(tmp_path / "w.csv", "text,label\na,x,1\nb,y,2\n")))
    headerless = write(tmp_path / "h.tsv", "a\tx\tz\nb\ty\tz\n")
    raises(r"data\.column_names lists 2 names but the rows have a different number of fields", load_splits,
           DataConfig(train=headerless, header=False, column_names=["text", "label"]))


def test_datasets_folder_errors(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]})}) \
        .save_to_disk(str(folder))
    raises(r"saved: holds splits \['validation'\], none named 'train'; set data\.hub_split", load_splits,
           DataConfig(train=str(folder)))
    (tmp_path / "plain").mkdir()
    raises(r"plain: not a `datasets` save_to_disk folder", load_splits, DataConfig(train=str(tmp_path / "plain")))


def test_hub_id_without_network_asks_for_a_local_file(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    raises(r"^someone/no-such-set: could not load this hub dataset .*without network access give a local file",
           read_table, "someone/no-such-set", DataConfig())


def test_aux_score_errors(tmp_path):
    def table(cells: list[str]) -> str:
        with (tmp_path / "aux.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label", "aux"])
            writer.writerows([f"t{i}", i % 2, cell] for i, cell in enumerate(cells))
        return str(tmp_path / "aux.csv")

    pairs = json.dumps([["hate", 0.1], ["violence", 0.2]])
    distill = DistillConfig(aux_column="aux")
    raises(r"aux\.csv: row 2, column 'aux': 1 scores, expected 2 \(\['hate', 'violence'\]\)", load_splits,
           DataConfig(train=table([pairs, json.dumps([["hate", 0.3]]), pairs, pairs])), distill)
    raises(r"aux\.csv: row 3, column 'aux': unknown score name 'sexual'", load_splits,
           DataConfig(train=table([pairs, pairs, json.dumps([["hate", 0.1], ["sexual", 0.2]]), pairs])), distill)
    raises(r"aux\.csv: row 1, column 'aux': not a JSON list of scores", load_splits,
           DataConfig(train=table(["{oops", pairs, pairs, pairs])), distill)
    raises(r"aux\.csv: row 2, column 'aux': 3 scores, expected 2", load_splits,
           DataConfig(train=table(["[0.1, 0.2]", "[0.1, 0.2, 0.3]", "[0, 1]", "[1, 0]"])), distill)
    raises(r"aux\.csv: row 1, column 'aux': scores must be numbers", load_splits,
           DataConfig(train=table(['["a", "b", "c"]', "[0, 1]", "[0, 1]", "[0, 1]"])), distill)
    raises(r"no column 'scores' \(set by distill\.aux_column\)", load_splits,
           DataConfig(train=table([pairs] * 4)), DistillConfig(aux_column="scores"))


def test_aux_scores_joined_from_another_file(tmp_path):
    pairs = json.dumps([["hate", 0.25], ["violence", 0.5]])
    train = write(tmp_path / "train.csv", "id,text,label\n" + "".join(f"k{i},t{i},{i % 2}\n" for i in range(8)))
    scores = tmp_path / "scores.csv"
    with scores.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "aux"], ["k1", pairs], ["k3", pairs], ["zz", pairs]])
    joined = load_splits(DataConfig(train=train, validation=train),
                         DistillConfig(aux_column="aux", aux_file=str(scores), aux_key="id"))
    assert np.isnan(joined.train.aux).any(axis=1).tolist() == [True, False, True, False, True, True, True, True]
    assert joined.train.aux[1].tolist() == [0.25, 0.5] and joined.aux_names == ["hate", "violence"]

    raises(r"distill\.aux_file needs distill\.aux_key", load_splits, DataConfig(train=train),
           DistillConfig(aux_column="aux", aux_file=str(scores)), error=ConfigError)
    raises(r"scores\.csv: no column 'key'", load_splits, DataConfig(train=write(
        tmp_path / "keyed.csv", "key,text,label\na,t,0\nb,u,1\nc,v,0\nd,w,1\n")),
        DistillConfig(aux_column="aux", aux_file=str(scores), aux_key="key"))
    with scores.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["k1", json.dumps([["hate", 0.9], ["violence", 0.5]])])
    raises(r"scores\.csv: row 4, column 'id': key 'k1' appears again with other scores", load_splits,
           DataConfig(train=train), DistillConfig(aux_column="aux", aux_file=str(scores), aux_key="id"))


def test_read_texts_errors(tmp_path):
    raises(r"^--input: .*missing\.txt not found", read_texts, str(tmp_path / "missing.txt"), DataConfig())
    raises(r"blank\.txt: the file is empty", read_texts, write(tmp_path / "blank.txt", "\n  \n"), DataConfig())
    raises(r"in\.csv: no column 'text'", read_texts, write(tmp_path / "in.csv", "body\nhello\n"), DataConfig())


def test_every_message_is_a_single_line_even_for_multiline_cells(tmp_path):
    path = write(tmp_path / "t.csv", 'text,label\n"a\nb",x\nc,y\n')
    val = write(tmp_path / "v.csv", 'text,label\n"multi\nline",z\n')
    message = raises(r"label 'z'", load_splits, DataConfig(train=path, validation=val))
    assert re.search(r"row 1", message)
    assert np.all(load_splits(DataConfig(train=path, validation=path)).validation.rows == [1, 2])
