"""Dual encoder (XTREME-R's LAReQA and Mewsli-X baselines): one shared encoder embeds queries and candidates.

Rows: ``{"query": str, "candidate": str, "candidate_context": str | None}``; a candidate with a context is
encoded as the pair (candidate, context), as LAReQA encodes (answer sentence, paragraph). Embeddings are
the first token's final hidden state, L2-normalised; training scores every query against every candidate of
its batch (cosine x a learnable scale, initialised to 100 as in XTREME-R's ``bert.py``) with a softmax
cross-entropy whose targets are the diagonal (in-batch negatives). The model xit saves has no pooler
layer, so "CLS" here is the hidden state itself, not BERT's dense+tanh pooler output XTREME-R's code reads.

LAReQA's candidates are (answer sentence, paragraph) pairs here, as XTREME-R trains them; its evaluation
(`xit.stages.retrieval`) embeds sentence + paragraph as one string, as XTREME-R's evaluation does.

Dev metric (for picking the best checkpoint): every dev query ranks the distinct candidates of the dev
rows; ``mrr`` is the mean reciprocal rank of its own candidate x 100, ``accuracy`` the share ranked first.

With several processes (`xit.train`, data parallel), each rank encodes only its share of the batch and
gathers the other ranks' candidate embeddings (`gather_candidates`, gradients flowing back to the rank that
computed them): its queries are scored against every candidate of the whole batch, so the loss, and after
DDP's averaging the gradient, is the one a single process computes, for 1/N of the encoder's work per rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.formats.base import Format
from xit.formats.rows import DualEncoderRow


class Scale(nn.Module):
    """The learnable logit scale of the in-batch softmax."""

    def __init__(self, init: float = 100.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)))


def cls_embedding(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(model.encode(input_ids, attention_mask)[:, 0].float(), dim=-1)


class _GatherRows(torch.autograd.Function):
    """Every rank's tensor (all of one shape), stacked; the backward pass hands each rank the sum over ranks of
    the gradients of its rows (all ranks' losses read them). An all-reduce, which gloo and NCCL both have."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.stack(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather_candidates(c: torch.Tensor, rows: int) -> tuple[torch.Tensor, int]:
    """The candidate embeddings of every rank's share of the batch, in rank order, and where this rank's first
    one sits among them. `rows`: this rank's real rows (0 when its share is a stand-in that must not count)."""
    import torch.distributed as dist

    sizes = torch.tensor([len(c), rows], device=c.device)
    every = [torch.empty_like(sizes) for _ in range(dist.get_world_size())]
    dist.all_gather(every, sizes)
    counts = [(int(n), int(r)) for n, r in every]
    longest = max(n for n, _ in counts)
    padded = nn.functional.pad(c, (0, 0, 0, longest - len(c)))
    stacked = _GatherRows.apply(padded)
    gathered = torch.cat([stacked[i, :r] for i, (_, r) in enumerate(counts)])
    return gathered, sum(r for _, r in counts[: dist.get_rank()])


def candidate_key(row: DualEncoderRow) -> tuple[str, str]:
    return (row["candidate"], row.get("candidate_context") or "")


class DualEncoder(Format):
    name = "dual_encoder"
    predicts_from_features = False  # `predict` embeds the queries and the distinct candidates itself

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return Scale()

    def _encode_queries(self, texts: list[str], tokenizer: Any, hp: dict) -> Any:
        return tokenizer(texts, truncation=True, max_length=int(hp["max_query_length"]))

    def _encode_candidates(self, rows: list[dict], tokenizer: Any, hp: dict) -> Any:
        length = int(hp["max_length"])
        texts = [r["candidate"] for r in rows]
        if any(r.get("candidate_context") for r in rows):
            return tokenizer(texts, [r.get("candidate_context") or "" for r in rows], truncation=True,
                             max_length=length)
        return tokenizer(texts, truncation=True, max_length=length)

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        if not rows:
            return []
        q = self._encode_queries([r["query"] for r in rows], tokenizer, hp)
        c = self._encode_candidates(rows, tokenizer, hp)
        return [{"input_ids": q["input_ids"][i], "attention_mask": q["attention_mask"][i],
                 "c_input_ids": c["input_ids"][i], "c_attention_mask": c["attention_mask"][i]}
                for i in range(len(rows))]

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        q = cls_embedding(model, batch["input_ids"], batch["attention_mask"])
        c = cls_embedding(model, batch["c_input_ids"], batch["c_attention_mask"])
        scale = model.heads[task].scale
        if "rows" not in batch:  # one process: the whole batch is here
            logits = (q @ c.T) * scale
            return nn.functional.cross_entropy(logits, torch.arange(len(q), device=logits.device)), logits
        rows = int(batch["rows"])  # this rank's share of a batch split across ranks (module docstring)
        everyone, first = gather_candidates(c, rows)
        logits = (q @ everyone.T) * scale
        if not rows:  # a stand-in: no loss of its own, but in the graph, as DDP wants every rank's backward
            return logits.sum() * 0.0, logits
        targets = torch.arange(first, first + len(q), device=logits.device)
        return nn.functional.cross_entropy(logits, targets), logits

    def predict(self, model: Any, task: Any, rows: list[dict], tokenizer: Any, hp: dict,
                device: torch.device, bar: Any = None, features: list[dict] | None = None) -> list[int]:
        """The rank (1 = first) of each row's own candidate among the distinct candidates of ``rows``."""
        from xit.encoding import embed
        from xit.metrics.retrieval import l2_normalize

        if not rows:
            return []
        pool: dict[tuple[str, str], int] = {}
        for r in rows:
            pool.setdefault(candidate_key(r), len(pool))
        progress = bar(len(rows) + len(pool)) if bar is not None else None
        common = {"layer": -1, "pooling": "cls", "batch_size": int(hp["eval_batch_size"]), "device": device,
                  "progress": progress}
        q = embed(model.encoder, tokenizer, [r["query"] for r in rows], max_length=int(hp["max_query_length"]),
                  **common)
        with_context = any(b for _, b in pool)
        c = embed(model.encoder, tokenizer, [a for a, _ in pool], max_length=int(hp["max_length"]),
                  pairs=[b for _, b in pool] if with_context else None, **common)
        sims = l2_normalize(q) @ l2_normalize(c).T
        own = np.array([pool[candidate_key(r)] for r in rows])
        gold = sims[np.arange(len(rows)), own]
        # Ties count against the gold candidate: rank = 1 + candidates scoring at least as high, other than it.
        return [int(n) for n in (sims >= gold[:, None]).sum(axis=1)]

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[Any]:  # pragma: no cover - predict ranks directly
        raise NotImplementedError("dual encoders predict ranks in `predict`")

    def gold(self, task: Any, row: dict) -> int:
        return 1

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        ranks = np.asarray(predictions, dtype=np.float64)
        if not len(ranks):
            return {"mrr": 0.0, "accuracy": 0.0}
        return {"mrr": float(100 * np.mean(1.0 / ranks)), "accuracy": float(100 * np.mean(ranks == 1))}
