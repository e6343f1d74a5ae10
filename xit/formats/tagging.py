"""Token tagging (PANX/WikiANN NER, UDPOS): first-subword labelling; seqeval span F1 and accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.formats.base import Format
from xit.metrics.tagging import span_f1, token_accuracy


class Tagging(Format):
    name = "tagging"

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, len(task.labels)))

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        if not rows:
            return []
        label_id = {t: i for i, t in enumerate(task.labels)}
        enc = tokenizer([r["tokens"] for r in rows], is_split_into_words=True, truncation=True,
                        max_length=int(hp["max_length"]))
        feats = []
        for i, r in enumerate(rows):
            word_ids = enc.word_ids(i)
            first = [w is not None and (j == 0 or word_ids[j - 1] != w) for j, w in enumerate(word_ids)]
            f: dict[str, Any] = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
            if train:
                f["labels"] = [label_id[r["tags"][w]] if fst else -100
                               for w, fst in zip(word_ids, first, strict=True)]
            else:
                f["_first"] = [(j, w) for j, (w, fst) in enumerate(zip(word_ids, first, strict=True)) if fst]
            feats.append(f)
        return feats

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        logits = model.heads[task](model.encode(batch["input_ids"], batch["attention_mask"]))
        loss = None
        if "labels" in batch:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
        return loss, logits

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[list[str]]:
        out = []
        for r, f, lg in zip(rows, features, logits, strict=True):
            tags = ["O"] * len(r["tokens"])  # words cut off by max_length are predicted "O"
            for j, w in f["_first"]:
                tags[w] = task.labels[int(np.argmax(lg[j]))]
            out.append(tags)
        return out

    def gold(self, task: Any, row: dict) -> list[str]:
        return list(row["tags"])

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        gold = [list(r["tags"]) for r in rows]
        return {**span_f1(gold, predictions), "accuracy": token_accuracy(gold, predictions)}

    def example_stats(self, task: Any, rows: list[dict], predictions: list[Any]) -> Any:
        """Per sentence: (true positive, predicted, gold) entity spans for F1, (correct, total) tokens for
        accuracy. seqeval joins sentences with an "O" between them, so no span crosses one and the sums over
        sentences are its corpus counts."""
        from seqeval.metrics.sequence_labeling import get_entities

        from xit.stats import ExampleStats

        golds = [list(r["tags"]) for r in rows]
        if task.metric == "accuracy":
            return ExampleStats("ratio", np.array([[sum(a == b for a, b in zip(g, p, strict=True)), len(g)]
                                                   for g, p in zip(golds, predictions, strict=True)]))
        if task.metric != "f1":
            return None
        out = []
        for g, p in zip(golds, predictions, strict=True):
            true, pred = set(get_entities(g)), set(get_entities(list(p)))
            out.append([len(true & pred), len(pred), len(true)])
        return ExampleStats("f1", np.array(out))
