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
        """One feature per segment of a sentence: a sentence longer than ``max_length`` is cut, between words,
        into segments that fit, so every word is trained on and predicted (nothing is truncated).

        As google-research/xtreme ``utils_preprocess.py`` (``udpos_tokenize_preprocess``,
        ``panx_tokenize_preprocess``), for training and evaluation alike: words are added to the current segment
        while its subwords fit in ``max_length`` less the special tokens, and the word that would overflow starts
        the next one; a word with no subword, or with more than a whole segment holds, is replaced by the
        tokenizer's unknown token. Each feature carries ``_row`` (its sentence) and, for evaluation, ``_first``:
        (position, word index in the sentence) of every word's first subword; `decode` joins the segments."""
        if not rows:
            return []
        label_id = {t: i for i, t in enumerate(task.labels)}
        max_length = int(hp["max_length"])
        budget = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
        words = [list(r["tokens"]) for r in rows]
        counted = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        pieces: list[tuple[int, int, list[str]]] = []  # (row, index of its first word, its words)
        for i, ws in enumerate(words):
            n = [0] * len(ws)
            for w in counted.word_ids(i):
                if w is not None:
                    n[w] += 1
            unk = [c == 0 or c > budget for c in n]
            ws = [tokenizer.unk_token if u else w for w, u in zip(ws, unk, strict=True)]
            n = [1 if u else c for c, u in zip(n, unk, strict=True)]
            start = used = 0
            for j, c in enumerate(n):
                if used + c > budget:
                    pieces.append((i, start, ws[start:j]))
                    start, used = j, 0
                used += c
            pieces.append((i, start, ws[start:]))
        enc = tokenizer([p[2] for p in pieces], is_split_into_words=True, truncation=True, max_length=max_length)
        feats = []
        for k, (i, offset, _) in enumerate(pieces):
            word_ids = enc.word_ids(k)
            first = [w is not None and (j == 0 or word_ids[j - 1] != w) for j, w in enumerate(word_ids)]
            f: dict[str, Any] = {"input_ids": enc["input_ids"][k], "attention_mask": enc["attention_mask"][k],
                                 "_row": i}
            if train:
                tags = rows[i]["tags"]
                f["labels"] = [label_id[tags[offset + w]] if fst else -100
                               for w, fst in zip(word_ids, first, strict=True)]
            else:
                f["_first"] = [(j, offset + w) for j, (w, fst) in enumerate(zip(word_ids, first, strict=True))
                               if fst]
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
        """Each sentence's tags, joined from its segments' features (every word has its first subword in one)."""
        out = [["O"] * len(r["tokens"]) for r in rows]
        for f, lg in zip(features, logits, strict=True):
            tags = out[f["_row"]]
            for j, w in f["_first"]:
                tags[w] = task.labels[int(np.argmax(lg[j]))]
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
