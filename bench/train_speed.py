"""Training speed and accuracy on SST-2, side by side: plain Hugging Face Trainer + PEFT vs distilora.

Same backbone (bundled MiniLM), same LoRA (r 16, alpha 32, dropout 0.1, attention + FFN projections, head and
pooler trained), same optimiser settings, same data, same machine, one epoch each, in one run. Each side runs in
its own process so peak memory is its own. Reported: samples/s, real and padded tokens per step, training seconds
to reach 90% dev accuracy, final dev accuracy, peak memory, achieved FLOP/s against the measured matmul peak.

    python bench/train_speed.py                  # full SST-2 train split (about 1 hour on 2 cores)
    python bench/train_speed.py --rows 8000      # a quicker subset
    python bench/train_speed.py --rows 8000 --precision bf16   # both sides with bf16 autocast (CPUs with AVX512-BF16/AMX)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_peak_gflops, peak_rss_mb, print_table, require_data, trainer_clock, write_results  # noqa: E402

LORA = {"r": 16, "alpha": 32, "dropout": 0.1}
TARGETS = r".*\.layer\.\d+\.(?:attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
HYPER = {"lr": 5e-4, "batch_size": 32, "epochs": 1, "warmup_ratio": 0.06, "weight_decay": 0.01, "max_length": 128,
         "seed": 42}


def read_sst2(rows: int | None) -> tuple[list[str], list[int], list[str], list[int]]:
    import csv

    import pandas as pd

    train = pd.read_csv(require_data("sst2", "train.tsv"), sep="\t", quoting=csv.QUOTE_NONE, dtype={"sentence": str})
    dev = pd.read_csv(require_data("sst2", "dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE, dtype={"sentence": str})
    if rows:
        train = train.sample(n=rows, random_state=HYPER["seed"])
    return train.sentence.tolist(), train.label.tolist(), dev.sentence.tolist(), dev.label.tolist()


def flops_per_sample_token(params_frozen: int, params_trainable: int) -> float:
    """LoRA step cost per real token (attention's quadratic term left out): forward 2N, backward through frozen
    weights 2N (activation gradients only), and 6 per trainable weight."""
    return 4 * params_frozen + 6 * params_trainable


def run_trainer(args: argparse.Namespace) -> dict:
    """The peer as a user writes it: Trainer + PEFT, DataCollatorWithPadding, default random batches."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from distilora.modeling.backbone import resolve_backbone

    torch.manual_seed(HYPER["seed"])
    texts, labels, dev_texts, dev_labels = read_sst2(args.rows)
    path = resolve_backbone("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=LORA["r"], lora_alpha=LORA["alpha"],
                                             lora_dropout=LORA["dropout"], target_modules=TARGETS,
                                             modules_to_save=["classifier", "pooler"]))
    tok = lambda batch: tokenizer(batch["text"], truncation=True, max_length=HYPER["max_length"])  # noqa: E731
    train_ds = Dataset.from_dict({"text": texts, "label": labels}).map(tok, batched=True, remove_columns=["text"])
    dev_ds = Dataset.from_dict({"text": dev_texts, "label": dev_labels}).map(tok, batched=True, remove_columns=["text"])

    clock = trainer_clock()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(args.work / "trainer"), per_device_train_batch_size=HYPER["batch_size"],
                               per_device_eval_batch_size=64, num_train_epochs=HYPER["epochs"],
                               learning_rate=HYPER["lr"], warmup_steps=HYPER["warmup_ratio"],
                               weight_decay=HYPER["weight_decay"], lr_scheduler_type="linear", eval_strategy="steps",
                               eval_steps=args.eval_every, save_strategy="no", report_to=[], use_cpu=True,
                               seed=HYPER["seed"], logging_steps=100, disable_tqdm=True,
                               bf16=args.precision == "bf16"),
        train_dataset=train_ds, eval_dataset=dev_ds, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        callbacks=[clock])
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    final = trainer.evaluate()["eval_accuracy"]
    lengths = np.array([len(x) for x in train_ds["input_ids"]])
    rng = np.random.default_rng(HYPER["seed"])
    batches = np.array_split(rng.permutation(len(lengths)), int(np.ceil(len(lengths) / HYPER["batch_size"])))
    padded = float(np.mean([lengths[b].max() * len(b) for b in batches]))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"side": "Trainer + PEFT", "samples_per_s": len(texts) / clock.train_seconds,
            "train_seconds": clock.train_seconds, "wall_seconds": wall, "dev_accuracy": final, "curve": clock.points,
            "real_tokens_per_step": float(lengths.mean() * HYPER["batch_size"]), "padded_tokens_per_step": padded,
            "tokens": int(lengths.sum()), "trainable": trainable, "frozen": total - trainable, "peak_rss_mb": peak_rss_mb()}


def run_distilora(args: argparse.Namespace) -> dict:
    import csv

    from distilora.config import build_config
    from distilora.data.batching import padding_stats, training_batches
    from distilora.data.tokenize import encode, load_fast_tokenizer
    from distilora.modeling.backbone import resolve_backbone
    from distilora.runfolder import RunFolder
    from distilora.training.runner import train

    texts, labels, dev_texts, dev_labels = read_sst2(args.rows)
    data = args.work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in {"train": (texts, labels), "dev": (dev_texts, dev_labels)}.items():
        with open(data / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(x, y))
    config = build_config({
        "name": "sst2", "output_dir": str(args.work / "distilora"),
        "data": {"train": str(data / "train.csv"), "validation": str(data / "dev.csv"),
                 "max_length": HYPER["max_length"], "seed": HYPER["seed"]},
        "peft": {"r": LORA["r"], "alpha": LORA["alpha"], "dropout": LORA["dropout"]},
        "train": {"lr": HYPER["lr"], "batch_size": HYPER["batch_size"], "epochs": HYPER["epochs"],
                  "warmup_ratio": HYPER["warmup_ratio"], "weight_decay": HYPER["weight_decay"],
                  "eval_every": args.eval_every, "seed": HYPER["seed"], "checkpoint_every": 10_000,
                  "precision": "bf16" if args.precision == "bf16" else "no"},
        "eval": {"report": False, "calibrate": False, "tune_threshold": "none"}})
    start = time.perf_counter()
    run = train(config, overwrite=True)
    wall = time.perf_counter() - start
    folder = RunFolder(run)
    info = folder.info()
    encoded = encode(load_fast_tokenizer(str(run / "model")), texts, None, HYPER["max_length"])
    stats = padding_stats(encoded.lengths, training_batches(encoded.lengths, HYPER["batch_size"], seed=HYPER["seed"],
                                                             epoch=0, group_by_length=True))
    steps = len(training_batches(encoded.lengths, HYPER["batch_size"], seed=HYPER["seed"], epoch=0,
                                 group_by_length=True))
    curve = [{"step": h["step"], "seconds": h["seconds"], "accuracy": h["val_accuracy"]} for h in folder.history()]
    return {"side": "distilora", "samples_per_s": info.train_samples_per_second, "train_seconds": info.train_seconds,
            "wall_seconds": wall, "dev_accuracy": folder.metrics("validation")["accuracy"], "curve": curve,
            "real_tokens_per_step": stats["real_tokens"] / steps, "padded_tokens_per_step": stats["padded_tokens"] / steps,
            "tokens": int(encoded.lengths.sum()), "trainable": info.trainable_params,
            "frozen": info.total_params - info.trainable_params, "peak_rss_mb": peak_rss_mb(),
            "resolved_backbone": resolve_backbone("minilm")}


def time_to(curve: list[dict], target: float) -> float | None:
    return next((p["seconds"] for p in curve if p["accuracy"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="training rows (default: all 67,349)")
    parser.add_argument("--eval-every", type=int, default=300, help="optimizer steps between dev evaluations")
    parser.add_argument("--work", type=Path, default=Path("/tmp/distilora-bench-train"))
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="training precision of both sides (bf16 = autocast, fp32 master weights)")
    parser.add_argument("--side", choices=["trainer", "distilora"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    require_data("sst2", "train.tsv")
    if args.side:
        result = run_trainer(args) if args.side == "trainer" else run_distilora(args)
        print("RESULT " + json.dumps(result))
        return
    peak = matmul_peak_gflops(dtype="bfloat16" if args.precision == "bf16" else "float32")
    results = []
    for side in ("trainer", "distilora"):
        cmd = [sys.executable, __file__, "--side", side, "--eval-every", str(args.eval_every), "--work", str(args.work),
               "--precision", args.precision]
        if args.rows:
            cmd += ["--rows", str(args.rows)]
        print(f"running {side} ...", flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(line[len("RESULT "):]))
    for r in results:
        r["time_to_90_s"] = time_to(r["curve"], 0.90)
        flops = flops_per_sample_token(r["frozen"], r["trainable"]) * r["tokens"]  # useful work: real tokens only
        r["achieved_gflops"] = flops / r["train_seconds"] / 1e9
        r["pct_of_matmul_peak"] = 100 * r["achieved_gflops"] / peak
    base = results[0]
    for r in results:
        r["throughput_x"] = r["samples_per_s"] / base["samples_per_s"]
    print_table(results, ["side", "samples_per_s", "throughput_x", "real_tokens_per_step", "padded_tokens_per_step",
                          "train_seconds", "time_to_90_s", "dev_accuracy", "peak_rss_mb", "achieved_gflops",
                          "pct_of_matmul_peak"])
    print(f"measured {args.precision} matmul peak: {peak:.1f} GFLOP/s")
    path = write_results("train_speed" + (f"_{args.rows}" if args.rows else "") +
                         ("_bf16" if args.precision == "bf16" else ""),
                         {"rows": args.rows or "all", "precision": args.precision, "hyper": HYPER, "lora": LORA,
                          "matmul_peak_gflops": peak, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
