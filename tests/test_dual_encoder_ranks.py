"""The dual encoder's in-batch loss split across ranks (xit.formats.dual_encoder.gather_candidates): two gloo
processes on CPU, each encoding its share of a batch, give the loss and gradients one process computes on the
whole batch, including a share that is an empty-batch stand-in."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from xit.formats.dual_encoder import DualEncoder, Scale

VOCAB, DIM = 50, 8


class Encoder(nn.Module):
    """A stand-in encoder with the interface DualEncoder.forward reads: encode(ids, mask) -> hidden states."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(VOCAB, DIM)
        self.mix = nn.Linear(DIM, DIM)
        self.heads = nn.ModuleDict({"pairs": Scale(init=10.0)})

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.mix(self.emb(ids) * mask[..., None])
        return h + h.mean(dim=1, keepdim=True)  # the first token sees the others


def batch(rows: list[int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (7, 5), generator=g)
    c_ids = torch.randint(0, VOCAB, (7, 6), generator=g)
    return {"input_ids": ids[rows], "attention_mask": torch.ones_like(ids[rows]),
            "c_input_ids": c_ids[rows], "c_attention_mask": torch.ones_like(c_ids[rows])}


def split_step(rank: int, world: int, port: int, n: int, out: dict) -> None:
    """One rank: its share idx[rank::world] of a batch of n (the first example stands in for an empty share, with
    no weight, as xit.train does), its loss weighted world x its share, gradients averaged as DDP averages them."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = Encoder()
        idx = list(range(n))
        mine = idx[rank::world]
        share = len(mine) / n
        if not mine:
            mine, share = idx[:1], 0.0
        b = batch(mine)
        b["rows"] = torch.tensor(len(mine) if share else 0)
        loss, _ = DualEncoder().forward(model, "pairs", b)
        (loss * share * world).backward()
        grads = {}
        for name, p in model.named_parameters():
            g = p.grad.clone()
            dist.all_reduce(g)
            grads[name] = g / world
        whole = torch.tensor(float(loss.detach()) * share * world)
        dist.all_reduce(whole)
        if rank == 0:
            out.update(loss=float(whole) / world, grads=grads)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("n", [7, 1])  # shares of 4 and 3; and a batch of one, rank 1 a stand-in
def test_two_ranks_give_the_one_process_loss_and_gradients(n: int) -> None:
    model = Encoder()
    loss, logits = DualEncoder().forward(model, "pairs", batch(list(range(n))))
    assert logits.shape == (n, n)
    loss.backward()
    one = {name: p.grad for name, p in model.named_parameters()}

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(split_step, args=(2, _free_port(), n, out), nprocs=2, join=True)
        two = dict(out)
    assert two["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert set(two["grads"]) == set(one)
    for name, g in one.items():
        torch.testing.assert_close(two["grads"][name], g, rtol=1e-4, atol=1e-6)
    if n > 1:
        assert any(float(g.abs().sum()) > 0 for g in one.values())
    else:  # one query, one candidate: loss 0; counting the stand-in's copy of it as a negative would give log 2
        assert two["loss"] == pytest.approx(0.0, abs=1e-6)


def test_one_process_forward_reads_no_process_group() -> None:
    """Without "rows" (one process, or evaluation) the forward is the plain in-batch softmax over the batch."""
    model = Encoder()
    b = batch([0, 1, 2])
    loss, logits = DualEncoder().forward(model, "pairs", b)
    q = nn.functional.normalize(model.encode(b["input_ids"], b["attention_mask"])[:, 0], dim=-1)
    c = nn.functional.normalize(model.encode(b["c_input_ids"], b["c_attention_mask"])[:, 0], dim=-1)
    want = nn.functional.cross_entropy(q @ c.T * 10.0, torch.arange(3))
    assert not dist.is_initialized()
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    assert logits.shape == (3, 3)
