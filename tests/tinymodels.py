"""Tiny random-weight models and tokenizers for fast tests (built on the fly; nothing downloaded)."""
from __future__ import annotations

from pathlib import Path

WORDS = ("good great love excellent fine happy nice awesome bad awful hate terrible poor sad angry broken "
         "the a is it this app was very not and but movie product service i you we they really so too").split()


_SPECIALS = {"bert": {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
             "mpnet": {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "[UNK]", "mask": "<mask>"}}


def write_tiny_tokenizer(folder: Path, style: str = "bert") -> Path:
    """A lower-casing WordPiece tokenizer over a small vocabulary, saved as a Hugging Face tokenizer folder.

    style 'mpnet' uses MPNet's special tokens and order (<s>=0, <pad>=1, </s>=2) and the words reversed, so its
    token ids mean other words than the BERT style's: a student and teacher with really different tokenizers."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    special = _SPECIALS[style]
    words = list(WORDS) if style == "bert" else list(reversed(WORDS))
    vocab = [*special.values(), *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    (folder / "vocab.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    backend = Tokenizer(WordPiece(ids, unk_token=special["unk"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    cls, sep = special["cls"], special["sep"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=special["unk"], pad_token=special["pad"],
                                        cls_token=cls, sep_token=sep, mask_token=special["mask"])
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_backbone(folder: Path, *, layers: int = 2, hidden: int = 32, model_type: str = "bert", seed: int = 0) -> Path:
    """A random-weight encoder (BERT, DistilBERT, RoBERTa or MPNet) plus tokenizer, saved like a hub model folder."""
    import torch
    from transformers import AutoModel, BertConfig, DistilBertConfig, MPNetConfig, RobertaConfig

    write_tiny_tokenizer(folder, "mpnet" if model_type == "mpnet" else "bert")
    vocab_size = len((folder / "vocab.txt").read_text(encoding="utf-8").split())
    if model_type == "bert":
        config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=37, max_position_embeddings=128)
    elif model_type == "distilbert":
        config = DistilBertConfig(vocab_size=vocab_size, dim=hidden, n_layers=layers, n_heads=2, hidden_dim=37,
                                  max_position_embeddings=128)
    elif model_type == "roberta":
        config = RobertaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=130, pad_token_id=0, bos_token_id=2,
                               eos_token_id=3)
    elif model_type == "mpnet":
        config = MPNetConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                             intermediate_size=37, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                             eos_token_id=2)
    else:
        raise ValueError(model_type)
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


POSITIVE = "good great love excellent fine happy nice awesome".split()
NEGATIVE = "bad awful hate terrible poor sad angry broken".split()
FILLER = "the a is it this app was very and so too really movie product service".split()


def write_tiny_reviews(path: Path, rows: int, *, seed: int = 0, task: str = "binary") -> Path:
    """A CSV of short texts from the tiny vocabulary whose label follows from the words (learnable in seconds).

    binary: label negative/positive; multiclass: negative/neutral/positive; multilabel: 0/1 columns pos, neg.
    """
    import csv
    import random

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "pos", "neg"] if task == "multilabel" else ["text", "label"])
        for i in range(rows):
            kind = i % (3 if task != "binary" else 2)
            words = rng.sample(FILLER, rng.randint(2, 6))
            if kind == 0:
                words += rng.sample(POSITIVE, rng.randint(1, 3))
            elif kind == 1:
                words += rng.sample(NEGATIVE, rng.randint(1, 3))
            else:
                words += rng.sample(POSITIVE, 1) + rng.sample(NEGATIVE, 1)
            rng.shuffle(words)
            text = " ".join(words)
            if task == "multilabel":
                writer.writerow([text, int(kind in (0, 2)), int(kind in (1, 2))])
            elif task == "multiclass":
                writer.writerow([text, ["positive", "negative", "neutral"][kind]])
            else:
                writer.writerow([text, ["positive", "negative"][kind]])
    return path
