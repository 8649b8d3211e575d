"""The numbers of training: losses against hand computations, the LR schedule, checkpoints, method wrapping."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distilora.config import TrainConfig, build_config
from distilora.data.labels import LabelSpace
from distilora.modeling.build import build_model, lora_target_modules
from distilora.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from distilora.training.losses import class_weights, classification_loss
from distilora.training.loop import lr_lambda
from tinymodels import write_tiny_backbone


def test_auto_class_weights_are_inverse_frequency():
    labels = np.array([0, 0, 0, 1])
    assert class_weights("auto", labels, 2, multilabel=False) == pytest.approx([4 / 6, 4 / 2])
    multi = np.array([[1, 0], [0, 0], [0, 1], [0, 1]], dtype=np.float32)
    assert class_weights("auto", multi, 2, multilabel=True) == pytest.approx([3.0, 1.0])  # negatives / positives
    assert class_weights("none", labels, 2, multilabel=False) is None


def test_focal_loss_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    p = torch.softmax(logits, -1)[:, 0]
    expected = (-(1 - p) ** 2 * torch.log(p)).mean()
    got = classification_loss(logits, labels, multilabel=False, cfg=TrainConfig(loss="focal", focal_gamma=2.0))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # gamma 0 is plain cross-entropy
    ce = classification_loss(logits, labels, multilabel=False, cfg=TrainConfig(loss="focal", focal_gamma=0.0))
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)


def test_weighted_ce_and_bce():
    logits = torch.tensor([[1.0, -1.0], [0.5, 0.2]])
    labels = torch.tensor([1, 0])
    w = torch.tensor([1.0, 3.0])
    lp = torch.log_softmax(logits, -1)
    expected = -(3.0 * lp[0, 1] + 1.0 * lp[1, 0]) / 4.0
    got = classification_loss(logits, labels, multilabel=False, cfg=TrainConfig(), weights=w)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = classification_loss(logits, y, multilabel=True, cfg=TrainConfig())
    s = torch.sigmoid(logits)
    hand = -(y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()
    assert bce.item() == pytest.approx(hand.item(), rel=1e-6)


def test_schedule_warms_up_then_decays_to_zero():
    f = lr_lambda("linear", warmup=10, total=110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == 0.0
    c = lr_lambda("cosine", warmup=0, total=100)
    assert c(50) == pytest.approx(0.5) and c(100) == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(lr_lambda("constant", 5, 100)(80), 1.0)


@pytest.mark.parametrize("model_type, expected", [
    ("bert", {"query", "key", "value", "dense"}), ("distilbert", {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"}),
    ("roberta", {"query", "key", "value", "dense"}),
])
def test_lora_wraps_encoder_projections_and_never_the_head(tmp_path, model_type, expected):
    backbone = write_tiny_backbone(tmp_path / model_type, model_type=model_type)
    cfg = build_config({"model": {"backbone": str(backbone)}, "peft": {"r": 2}})
    built = build_model(cfg, LabelSpace(("a", "b", "c"), "multiclass"))
    wrapped = {name.split(".")[-1] for name, module in built.model.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == expected
    trainable = [n for n, p in built.model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert trainable and all("modules_to_save" in n for n in trainable)  # the head, saved with the adapter
    assert any("classifier" in n for n in trainable)
    assert built.trainable_params < built.total_params
    assert isinstance(lora_target_modules(built.model.get_base_model(), "all-linear"), str)


def test_head_method_trains_only_head(tmp_path):
    backbone = write_tiny_backbone(tmp_path / "b")
    cfg = build_config({"model": {"backbone": str(backbone), "method": "head"}})
    built = build_model(cfg, LabelSpace(("a", "b"), "binary"))
    names = {n for n, p in built.model.named_parameters() if p.requires_grad}
    assert names == {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}


def test_checkpoint_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    def make():
        torch.manual_seed(0)
        module = torch.nn.Linear(3, 2)
        opt = torch.optim.AdamW(module.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda("linear", 2, 10))
        return module, opt, sched

    module, opt, sched = make()
    for _ in range(3):
        module(torch.randn(4, 3)).sum().backward()
        opt.step(), sched.step(), opt.zero_grad()
    save_checkpoint(tmp_path, module=module, optimizer=opt, scheduler=sched, progress={"step": 3}, rank=0, world=1,
                    gather=lambda tensor: tensor, barrier=lambda: None)
    next_draw = torch.randn(2)
    module(torch.ones(1, 3)).sum().backward()
    opt.step(), sched.step()
    expected = module.weight.detach().clone()

    fresh, opt2, sched2 = make()
    progress = load_checkpoint(tmp_path, module=fresh, optimizer=opt2, scheduler=sched2, rank=0, world=1)
    assert progress["step"] == 3 and sched2.last_epoch == 3
    assert torch.equal(torch.randn(2), next_draw)  # RNG restored
    fresh(torch.ones(1, 3)).sum().backward()
    opt2.step(), sched2.step()
    assert torch.equal(fresh.weight, expected)
    assert not list(tmp_path.glob("*.pkl")) and (latest_checkpoint(tmp_path) / "optimizer.safetensors").is_file()


def test_a_multilabel_head_starts_at_the_label_priors_in_peft_copies_too():
    import numpy as np
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    from distilora.training.head_init import prior_logits, start_head_at_priors

    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]])
    assert np.allclose(prior_logits(labels), np.log([0.5 / 0.5, (2 / 6) / (4 / 6), (1 / 6) / (5 / 6)]))
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3)
    model = get_peft_model(BertForSequenceClassification(config), LoraConfig(
        task_type=TaskType.SEQ_CLS, r=2, target_modules=["query"], modules_to_save=["classifier"]))
    assert start_head_at_priors(model, labels) == 2  # the frozen original and the trained copy
    for name, param in model.named_parameters():
        if name.endswith("classifier.modules_to_save.default.bias"):
            assert torch.allclose(param, torch.tensor(prior_logits(labels), dtype=torch.float32))


def test_peak_memory_is_measured_per_stage():
    from distilora.memory import peak_rss_mb, reset_peak_rss

    reset_peak_rss()
    before = peak_rss_mb()
    block = np.ones(50 * 2**20 // 8)  # 50 MiB, touched
    during = peak_rss_mb()
    del block
    reset_peak_rss()
    after = peak_rss_mb()
    assert during >= before + 45 and after < during - 40  # the reset starts a new high-water mark
