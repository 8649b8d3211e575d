"""Which feature of the bundled MiniLM a few-shot head should read: a logistic regression on BERT's CLS pooler
output (what a *ForSequenceClassification head reads) vs on the mean-pooled sentence embedding (what SetFit reads),
same n SST-2 sentences per class (seed 0), centred and scaled by one overall spread as the few-shot warm start does,
scored on the 872 dev sentences.

    python bench/few_shot_features.py
"""
import csv
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModel, AutoTokenizer
from sklearn.linear_model import LogisticRegression
from distilora.modeling.backbone import resolve_backbone

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, require_data  # noqa: E402

require_data("sst2", "train.tsv")
path = resolve_backbone("minilm")
train = pd.read_csv(str(DATA / "sst2" / "train.tsv"), sep="\t", quoting=csv.QUOTE_NONE)
dev = pd.read_csv(str(DATA / "sst2" / "dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE)
tok = AutoTokenizer.from_pretrained(path); model = AutoModel.from_pretrained(path).eval()
def feats(texts):
    out_p, out_m = [], []
    for i in range(0, len(texts), 64):
        b = tok(texts[i:i+64], padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad(): o = model(**b)
        m = b["attention_mask"].unsqueeze(-1).float()
        out_p.append(o.pooler_output.numpy()); out_m.append(((o.last_hidden_state*m).sum(1)/m.sum(1)).numpy())
    return np.concatenate(out_p), np.concatenate(out_m)
dp, dm = feats(dev.sentence.tolist())
for n in (8, 16):
    sub = train.groupby("label").sample(n=n, random_state=0)
    tp, tm = feats(sub.sentence.tolist())
    for name, a, b in (("pooler", tp, dp), ("mean", tm, dm)):
        x = (a - a.mean(0)) / a.std(); y = (b - a.mean(0)) / a.std()
        print(n, name, round((LogisticRegression(max_iter=2000).fit(x, sub.label).predict(y) == dev.label.values).mean(), 4))
