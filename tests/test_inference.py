"""Batched inference (`Format.logits`): length-sorted batches, results in the input order.

Each feature's logits must equal what the model gives for that feature alone (no padding at all), whatever the
batch size: sorting by length changes which features share a batch, never which logits a feature gets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from xit.formats import get_format
from xit.modeling import new_model
from xit.tasks.registry import get_task


@pytest.mark.parametrize("task_name", ["demo-nli", "demo-tag"])
def test_logits_in_input_order_and_unaffected_by_batching(tiny_model_dir, tiny_tokenizer: Any,
                                                          task_name: str) -> None:
    task = get_task(task_name)
    fmt = get_format(task.format)
    rows = task.load("en", "dev")[:23]
    # Lengths from 1 word to the whole text, so batches mix short and long features.
    if task.format == "tagging":
        rows = [{"tokens": r["tokens"][: 1 + i % 7], "tags": r["tags"][: 1 + i % 7]} for i, r in enumerate(rows)]
    else:
        rows = [{**r, "text_a": " ".join(r["text_a"].split()[: 1 + i % 7])} for i, r in enumerate(rows)]
    feats = fmt.featurize(rows, tiny_tokenizer, task, {"max_length": 64}, train=False)
    lengths = [len(f["input_ids"]) for f in feats]
    assert len(set(lengths)) > 3  # the sample really mixes lengths, so sorting reorders it
    model = new_model(tiny_model_dir, [task], seed=0)
    cpu = torch.device("cpu")
    alone = fmt.logits(model, task.name, feats, tiny_tokenizer, 1, cpu)
    batched = fmt.logits(model, task.name, feats, tiny_tokenizer, 8, cpu)
    assert len(batched) == len(feats)
    for f, a, b in zip(feats, alone, batched, strict=True):
        n = len(f["input_ids"]) if a.ndim > 1 else None  # token-level outputs: the feature's own positions
        np.testing.assert_allclose(b[:n], a[:n], rtol=1e-4, atol=1e-4)


def test_logits_progress_counts_every_feature(tiny_model_dir, tiny_tokenizer: Any) -> None:
    task = get_task("demo-nli")
    fmt = get_format(task.format)
    feats = fmt.featurize(task.load("en", "dev")[:10], tiny_tokenizer, task, {"max_length": 64}, train=False)
    seen: list[int] = []
    fmt.logits(new_model(tiny_model_dir, [task]), task.name, feats, tiny_tokenizer, 4, torch.device("cpu"),
               seen.append)
    assert seen == [4, 4, 2]
