"""Memory savers for long texts and big teachers: MPNet attention through the fused kernel, and recomputed layer
activations (train.gradient_checkpointing). Both must give the eager results, gradients included, on the same weights."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tinymodels import write_tiny_backbone

torch = pytest.importorskip("torch")


def _tiny_mpnet_classifier(tmp_path: Path, dropout: float = 0.0) -> "torch.nn.Module":
    from transformers import AutoModelForSequenceClassification

    folder = write_tiny_backbone(tmp_path / "mpnet", model_type="mpnet", hidden=32)
    return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, attention_probs_dropout_prob=dropout,
                                                              hidden_dropout_prob=0.0)


def _padded_batch() -> dict[str, "torch.Tensor"]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 40, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:], mask[2, 3:] = 0, 0  # rows of different lengths, so the padding mask matters
    ids[mask == 0] = 1
    return {"input_ids": ids, "attention_mask": mask}


def test_fused_attention_gives_the_eager_outputs_and_gradients(tmp_path: Path) -> None:
    from distilora.modeling.fast_attention import SdpaMPNetSelfAttention, use_fused_attention

    eager = _tiny_mpnet_classifier(tmp_path)
    fused = copy.deepcopy(eager)
    assert use_fused_attention(fused) == 2  # one per layer
    assert sum(isinstance(m, SdpaMPNetSelfAttention) for m in fused.modules()) == 2
    batch, labels = _padded_batch(), torch.tensor([0, 2, 1])
    losses = []
    for model in (eager, fused):
        model.train()
        output = model(**batch, labels=labels)
        output.loss.backward()
        losses.append(output)
    assert torch.allclose(losses[0].logits, losses[1].logits, atol=1e-5)
    for (name, a), (_, b) in zip(eager.named_parameters(), fused.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_fused_attention_keeps_plain_weights_and_still_returns_attentions(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification
    from transformers.models.mpnet.modeling_mpnet import MPNetSelfAttention

    from distilora.modeling.fast_attention import use_fused_attention

    model = _tiny_mpnet_classifier(tmp_path).eval()
    names = set(model.state_dict())
    use_fused_attention(model)
    assert set(model.state_dict()) == names
    with torch.no_grad():
        output = model(**_padded_batch(), output_attentions=True)
    assert len(output.attentions) == 2 and output.attentions[0].shape == (3, 2, 12, 12)
    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert all(type(m) is MPNetSelfAttention for m in reloaded.modules() if isinstance(m, MPNetSelfAttention))


def test_attention_dropout_still_applies_in_training(tmp_path: Path) -> None:
    from distilora.modeling.fast_attention import use_fused_attention

    model = _tiny_mpnet_classifier(tmp_path, dropout=0.5)
    use_fused_attention(model)
    batch = _padded_batch()
    model.train()
    torch.manual_seed(1)
    first = model(**batch).logits
    torch.manual_seed(2)
    assert not torch.allclose(first, model(**batch).logits)
    model.eval()
    assert torch.allclose(model(**batch).logits, model(**batch).logits)


def test_other_architectures_are_left_alone(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from distilora.modeling.fast_attention import use_fused_attention

    bert = AutoModelForSequenceClassification.from_pretrained(write_tiny_backbone(tmp_path / "bert"), num_labels=2)
    assert use_fused_attention(bert) == 0


@pytest.mark.parametrize("model_type", ["bert", "mpnet"])
def test_recomputed_layers_give_the_same_loss_and_gradients_with_dropout_on(tmp_path: Path, model_type: str) -> None:
    from transformers import AutoModelForSequenceClassification

    from distilora.modeling.recompute import recompute_layer_activations

    folder = write_tiny_backbone(tmp_path / model_type, model_type=model_type)
    kept = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, hidden_dropout_prob=0.3).train()
    recomputed = copy.deepcopy(kept)
    assert recompute_layer_activations(recomputed) == 2
    batch, labels = _padded_batch(), torch.tensor([0, 1, 1])
    results, saved = [], []
    for model in (kept, recomputed):
        torch.manual_seed(7)  # the same dropout masks: checkpointing replays the first pass's random state
        kept_for_backward = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: kept_for_backward.append(t) or t, lambda t: t):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        results.append(loss)
        saved.append(sum(t.numel() for t in kept_for_backward))
    assert torch.allclose(results[0], results[1])
    assert saved[1] < saved[0] / 2  # the layers' activations were not kept
    for (name, a), (_, b) in zip(kept.named_parameters(), recomputed.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name
    assert set(recomputed.state_dict()) == set(kept.state_dict())


def test_a_run_with_gradient_checkpointing_trains_saves_and_reloads(tmp_path: Path) -> None:
    import json

    import numpy as np

    from distilora.config import build_config
    from distilora.inference.classifier import Classifier
    from distilora.training.runner import train
    from tinymodels import write_tiny_reviews

    backbone = write_tiny_backbone(tmp_path / "backbone", model_type="mpnet")
    cfg = build_config({"output_dir": str(tmp_path / "run"), "model": {"backbone": str(backbone)},
                        "data": {"train": str(write_tiny_reviews(tmp_path / "train.csv", 48)), "max_length": 24},
                        "train": {"epochs": 1, "batch_size": 8, "gradient_checkpointing": True},
                        "eval": {"report": False}})
    run = train(cfg)
    saved = [json.loads(line) for line in (run / "predictions" / "validation.jsonl").read_text().splitlines()]
    reloaded = Classifier.load(run).predict_logits([row["text"] for row in saved])
    assert np.allclose(reloaded, [row["logits"] for row in saved], atol=1e-4)


def test_gradient_checkpointing_names_the_field_for_an_unsupported_architecture() -> None:
    from transformers import GPT2Config, GPT2Model

    from distilora.errors import ConfigError
    from distilora.modeling.recompute import recompute_layer_activations

    model = GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10))
    with pytest.raises(ConfigError, match=r"^train\.gradient_checkpointing: cannot find the layers of a 'gpt2'"):
        recompute_layer_activations(model)


def test_a_token_budget_gives_the_same_training_as_whole_batches(tmp_path: Path) -> None:
    import json

    import numpy as np

    from distilora.config import build_config
    from distilora.training.runner import train
    from tinymodels import write_tiny_reviews

    backbone = write_tiny_backbone(tmp_path / "backbone")
    data = write_tiny_reviews(tmp_path / "train.csv", 64, seed=4)
    logits, histories = [], []
    for name, budget in (("whole", None), ("micro", 40)):
        cfg = build_config({"output_dir": str(tmp_path / name), "model": {"backbone": str(backbone), "dropout": 0.0},
                            "data": {"train": str(data), "max_length": 24},
                            "train": {"epochs": 2, "batch_size": 16, "max_batch_tokens": budget},
                            "eval": {"report": False}})
        run = train(cfg)
        rows = [json.loads(line) for line in (run / "predictions" / "validation.jsonl").read_text().splitlines()]
        logits.append(np.array([row["logits"] for row in rows]))
        histories.append([json.loads(line)["train_loss"] for line in (run / "history.jsonl").read_text().splitlines()])
    assert np.allclose(logits[0], logits[1], atol=1e-4)
    assert np.allclose(histories[0], histories[1], atol=1e-5)
