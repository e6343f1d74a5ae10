"""Masked-language modelling on raw text: rows ``{"text": str}`` (any other keys, e.g. ``language``, are kept).

Featurisation cuts each row's tokens into pieces of at most ``max_length`` (special tokens included) and masks
each piece once, seeded: 15 % of its non-special tokens are chosen, of those 80 % become the mask token, 10 % a
random non-special token and 10 % stay as they are — BERT's recipe (Devlin et al. 2019, §3.1), which XLM-R
trained with (fairseq `fairseq/data/mask_tokens_dataset.py`, MaskTokensDataset: mask_prob 0.15,
leave_unmasked_prob 0.1, random_token_prob 0.1). The random draws come from ``(seed, crc32(text), piece)``: the
same text masks the same way in any process and order. Training masks with ``hp["seed"]`` (the run's seed;
`xit.train` passes it), dev rows with seed 0, so every run is selected on the same masked dev set. Every piece
has at least one masked token. Masks are drawn once per run (static masking, as BERT's original data
pipeline), not again every epoch.

The head is RoBERTa's (and BERT's) LM head — dense, GELU, LayerNorm, then the encoder's input embeddings as the
output layer (tied: no second vocabulary-sized matrix) plus a bias per token; logits are computed only at masked
positions. Intermediate training starts it from the pretrained model's own LM head where that has one
(`load_pretrained_lm_head`: XLM-R, mBERT), as jiant does when a run has an MLM task
(`jiant/proj/simple/runscript.py` → model_load_mode "from_transformers_with_mlm";
`jiant/proj/main/modeling/model_setup.py` load_lm_heads_from_transformers_weights); xit-tiny and models without
one start it fresh. Dev metric: accuracy of the masked-token predictions (%).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
from torch import nn

from xit.formats.base import Format

MASK_PROBABILITY = 0.15
RANDOM_TOKEN_PROBABILITY = 0.1
UNCHANGED_PROBABILITY = 0.1


def mask_tokens(ids: list[int], special: list[bool], *, mask_id: int, vocab: np.ndarray,
                rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """(masked input ids, labels): labels hold the original id where a token was chosen, -100 elsewhere.

    `special` marks positions never chosen (<s>, </s>); `vocab` is the ids a random replacement is drawn from.
    """
    ids_arr = np.asarray(ids)
    candidates = np.flatnonzero(~np.asarray(special, dtype=bool))
    labels = np.full(len(ids), -100)
    if not len(candidates):
        return list(ids), labels.tolist()
    chosen = candidates[rng.random(len(candidates)) < MASK_PROBABILITY]
    if not len(chosen):
        chosen = candidates[[int(rng.integers(len(candidates)))]]
    labels[chosen] = ids_arr[chosen]
    out = ids_arr.copy()
    action = rng.random(len(chosen))
    replace = action < 1.0 - RANDOM_TOKEN_PROBABILITY - UNCHANGED_PROBABILITY
    randomise = (~replace) & (action < 1.0 - UNCHANGED_PROBABILITY)
    out[chosen[replace]] = mask_id
    out[chosen[randomise]] = vocab[rng.integers(len(vocab), size=int(randomise.sum()))]
    return out.tolist(), labels.tolist()


class LMHead(nn.Module):
    """dense → GELU → LayerNorm, and a bias over the vocabulary (sized by `for_vocabulary`, as the head is made
    before the encoder's vocabulary is looked at); the output weights are the encoder's input embeddings."""

    def __init__(self, hidden: int, vocabulary: int = 0):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=1e-5))
        self.bias = nn.Parameter(torch.zeros(vocabulary))

    def for_vocabulary(self, size: int) -> None:
        if self.bias.numel() != size:
            self.bias = nn.Parameter(torch.zeros(size))


# Where a pretrained masked-LM keeps its head: (dense, layer norm, bias) attribute paths, RoBERTa/XLM-R and BERT.
_PRETRAINED_HEADS = (("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
                     ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                      "cls.predictions.bias"))


def load_pretrained_lm_head(head: LMHead, model: str) -> bool:
    """Copy the LM head of pretrained masked-LM `model` (a Hub id or a local directory) into `head`; False when
    the model has none xit knows (the head stays as initialised)."""
    import logging

    from transformers import AutoModelForMaskedLM

    log = logging.getLogger(__name__)
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(model, trust_remote_code=False, output_loading_info=True)
    except (ValueError, OSError) as e:  # no masked-LM class for the architecture, or no such weights
        log.warning("%s: no pretrained LM head (%s); the MLM head starts fresh", model, e)
        return False
    for dense, norm, bias in _PRETRAINED_HEADS:
        try:
            d, n, b = mlm.get_submodule(dense), mlm.get_submodule(norm), mlm.get_parameter(bias)
        except AttributeError:
            continue
        if any(k.startswith(dense.split(".")[0] + ".") for k in info.get("missing_keys", ())):
            break  # an encoder-only checkpoint: the masked-LM class made up a head
        with torch.no_grad():
            head.transform[0].load_state_dict(d.state_dict())
            head.transform[2].load_state_dict(n.state_dict())
            head.transform[2].eps = n.eps
            head.for_vocabulary(b.numel())
            head.bias.copy_(b)
        return True
    log.warning("%s: no pretrained LM head; the MLM head starts fresh", model)
    return False


def _ends(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens around one sequence: <s> … </s> (XLM-R; [CLS] … [SEP] for BERT), or what the tokenizer
    has of bos/eos (mT5: </s> only)."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([first] if first is not None else []), ([last] if last is not None else [])


class MaskedLM(Format):
    name = "mlm"

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return LMHead(hidden)

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        if not rows:
            return []
        if tokenizer.mask_token_id is None:
            from xit.errors import XitError

            raise XitError(f"task {getattr(task, 'name', task)!r}: the tokenizer has no mask token")
        seed = int(hp.get("seed", 0)) if train else 0
        head, tail = _ends(tokenizer)
        room = int(hp["max_length"]) - len(head) - len(tail)
        specials = set(tokenizer.all_special_ids)
        vocab = np.array([i for i in range(len(tokenizer)) if i not in specials])
        enc = tokenizer([r["text"] for r in rows], add_special_tokens=False)["input_ids"]
        feats = []
        for i, (r, ids) in enumerate(zip(rows, enc, strict=True)):
            crc = zlib.crc32(r["text"].encode("utf-8"))
            for piece, start in enumerate(range(0, len(ids), room)):
                full = head + ids[start : start + room] + tail
                special = [t in specials for t in full]
                rng = np.random.default_rng([seed, crc, piece])
                masked, labels = mask_tokens(full, special, mask_id=tokenizer.mask_token_id, vocab=vocab, rng=rng)
                feats.append({"input_ids": masked, "attention_mask": [1] * len(masked), "labels": labels,
                              "_row": i})
        return feats

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        hidden = model.encode(batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        chosen = labels != -100
        head = model.heads[task]
        logits = head.transform(hidden[chosen]) @ model.encoder.get_input_embeddings().weight.T + head.bias
        loss = nn.functional.cross_entropy(logits.float(), labels[chosen])
        predicted = torch.full_like(labels, -100)
        predicted[chosen] = logits.argmax(-1)
        return loss, predicted  # predicted token ids at the masked positions (-100 elsewhere)

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[dict[str, int]]:
        out = [{"correct": 0, "masked": 0} for _ in rows]
        for f, predicted in zip(features, logits, strict=True):
            gold = np.asarray(f["labels"])
            at = gold != -100
            out[f["_row"]]["correct"] += int((predicted[: len(gold)][at].astype(np.int64) == gold[at]).sum())
            out[f["_row"]]["masked"] += int(at.sum())
        return out

    def gold(self, task: Any, row: dict) -> Any:
        raise NotImplementedError("masked-token predictions have no gold form per row")

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        masked = sum(p["masked"] for p in predictions)
        correct = sum(p["correct"] for p in predictions)
        return {"accuracy": 100.0 * correct / masked if masked else 0.0, "masked_tokens": float(masked)}
