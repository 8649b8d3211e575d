"""The model card: README.md in the Hugging Face format in the run folder and model/ (and merged/), parsed by
huggingface_hub's own card loader, saying what the run is; its loading snippet works in a fresh process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distilora.config import build_config
from distilora.inference.classifier import Classifier
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from test_train_e2e import tiny_raw

@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    return train(build_config(tiny_raw(tmp_path_factory.mktemp("card"), epochs=2)))

def test_cards_are_hugging_face_model_cards_that_say_what_the_run_is(lora_run):
    from huggingface_hub import ModelCard

    for path in (lora_run / "README.md", lora_run / "model" / "README.md"):
        card = ModelCard.load(path)
        assert card.data.library_name == "peft" and card.data.pipeline_tag == "text-classification"
        assert card.data.base_model.endswith("backbone") and "distilora" in card.data.tags
        assert {"accuracy", "f1"} <= set(card.data.metrics)
        for needle in ("## Data", "## Training", "## Metrics", "| validation |", "| test |", "chose the checkpoint",
                       "## Decision rule", "## Intended use and limits", "## How to load", "LoRA rank / alpha",
                       "95% bootstrap intervals on **test**", "accuracy 0.", "f1 0."):
            assert needle in card.text, needle
        assert ".partial" not in card.text  # cards are written before the folder gets its final name
    assert "PEFT" not in (lora_run / "model" / "README.md").read_text()[:200]  # not PEFT's blank template

def run_card_snippet(run: Path, text: str) -> tuple[np.ndarray, dict]:
    """The PEFT snippet of RUN/README.md, run as written in a fresh Python (no distilora import): logits, id2label."""
    import json
    import re

    card = (run / "README.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", card, re.S) if "from peft" in block)
    assert "distilora" not in snippet
    script = (f"{snippet}import json\nfrom transformers import AutoTokenizer\nmodel.eval()\n"
              f"t = AutoTokenizer.from_pretrained({str(run / 'model')!r})\n"
              f"print(json.dumps([model(**t([{text!r}], return_tensors='pt')).logits.tolist(), model.config.id2label]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=run.parent)  # the card names the run folder relative to where it lies
    assert out.returncode == 0, out.stderr[-1500:]
    logits, id2label = json.loads(out.stdout.strip().splitlines()[-1])
    return np.asarray(logits), id2label


def test_the_cards_peft_snippet_reproduces_distiloras_logits_and_label_names_in_a_fresh_process(lora_run):
    logits, id2label = run_card_snippet(lora_run, "good great app")
    np.testing.assert_allclose(logits, Classifier.load(lora_run).predict_logits(["good great app"]), atol=1e-5)
    assert list(id2label.values()) == RunFolder(lora_run).info().labels


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_the_peft_snippet_holds_for_three_classes_and_for_multi_label(tmp_path, task):
    run = train(build_config(tiny_raw(tmp_path, task=task, epochs=1)))
    logits, id2label = run_card_snippet(run, "good awful app")
    np.testing.assert_allclose(logits, Classifier.load(run).predict_logits(["good awful app"]), atol=1e-5)
    assert list(id2label.values()) == RunFolder(run).info().labels and len(id2label) in (2, 3)


def test_merged_export_carries_the_decision_rule_and_the_card(tmp_path, lora_run):
    import json
    import shutil

    run = Path(shutil.copytree(lora_run, tmp_path / "run"))
    out = subprocess.run([sys.executable, "-m", "distilora.cli", "export", str(run), "--format", "merged"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    config = json.loads((run / "merged" / "config.json").read_text())
    info = RunFolder(run).info()
    assert config["distilora_temperature"] == info.temperature and config["distilora_thresholds"] == info.thresholds
    assert (run / "merged" / "README.md").read_text().startswith("---\nlibrary_name: transformers")
