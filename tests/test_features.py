"""Tokenise once: featurised training sets cached in the store and shared between stages."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from xit.features import FeatureCache, feature_key, tokenizer_identity
from xit.formats import get_format
from xit.modeling import load_tokenizer
from xit.plan import build_plan
from xit.spec import GLOBAL_HPARAMS, parse_spec
from xit.stage import read_metrics, run_stage
from xit.store import LocalStore
from xit.tasks.registry import get_task


def counting(monkeypatch: pytest.MonkeyPatch, fmt_name: str) -> list[tuple[str, bool, int]]:
    """Record every featurisation of `fmt_name`: (task, train, rows)."""
    fmt = get_format(fmt_name)
    calls: list[tuple[str, bool, int]] = []
    real = type(fmt).featurize

    def featurize(self, rows, tokenizer, task, hp, train):  # noqa: ANN001
        calls.append((task.name, train, len(rows)))
        return real(self, rows, tokenizer, task, hp, train)

    monkeypatch.setattr(type(fmt), "featurize", featurize)
    return calls


@pytest.mark.slow  # a whole sweep (or several stages) through the local runner
def test_target_stages_of_two_branches_featurise_the_training_set_once(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"epochs": 1, "max_train_examples": 24, "max_dev_examples": 8, "batch_size": 8}
    spec = parse_spec({"name": "once", "intermediate": [[], ["demo-nli"]], "targets": ["demo-tag"],
                       "hparams": {"intermediate": small, "target": small}}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    store = LocalStore(tmp_path / "store")
    targets = [s for s in plan.stages if s.kind == "target"]
    assert len(targets) == 2 and targets[0].inputs != targets[1].inputs  # one per intermediate branch
    tags = counting(monkeypatch, "tagging")
    for stage in plan.stages:
        if stage.kind in ("intermediate", "target"):
            assert run_stage(plan, stage.key, store) == "done"
    assert [c for c in tags if c[1]] == [("demo-tag", True, 24)]  # the second target stage read the cache
    assert len(store.list("features")) == 2  # demo-nli's (intermediate) and demo-tag's training features
    # Both targets trained (on the same features, from different encoders).
    records = [read_metrics(store, t.key) for t in targets]
    assert all(r["steps"] == 3 for r in records) and records[0]["loss"] != records[1]["loss"]


def _job() -> tuple[Any, list[dict], dict[str, Any]]:
    task = get_task("demo-tag")
    hp = {**GLOBAL_HPARAMS, **task.defaults, "seed": 1}
    return task, task.load("en", "train")[:12], hp


def test_cached_features_equal_computed_ones_and_damage_is_recomputed(tmp_path: Path, tiny_model_dir: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    task, rows, hp = _job()
    tok = load_tokenizer(tiny_model_dir)
    fmt = get_format(task.format)
    computed: list[int] = []

    def compute() -> list[dict]:
        computed.append(1)
        return fmt.featurize(rows, tok, task, hp, train=True)

    store = LocalStore(tmp_path / "store")
    first = FeatureCache(store).get(task, "data-1", tok, hp, True, compute)
    cache = FeatureCache(store)
    assert cache.get(task, "data-1", tok, hp, True, compute) == first == fmt.featurize(rows, tok, task, hp, True)
    assert len(computed) == 1 and (cache.hits, cache.misses) == (1, 0)

    # Anything the features depend on is part of the key: data, featurisation parameters, train/dev rows.
    for args in (("data-2", hp, True), ("data-1", {**hp, "max_length": 32}, True), ("data-1", hp, False)):
        cache.get(task, args[0], tok, args[1], args[2], compute)
    assert len(computed) == 4
    # ...and training-only ones are not: another learning rate or epoch count reuses the entry.
    cache.get(task, "data-1", tok, {**hp, "lr": 1.0, "epochs": 7, "batch_size": 3}, True, compute)
    assert len(computed) == 4

    # A damaged entry (a flipped byte, a truncated write) is never used: recomputed and written back whole.
    (key,) = [k for k in store.list("features")
              if k == f"features/{feature_key(task, 'data-1', tokenizer_identity(tok), hp, True)}.json"]
    path = tmp_path / "store" / key
    good = path.read_bytes()
    for damaged in (good.replace(b'"input_ids":[0', b'"input_ids":[4', 1), good[: len(good) // 2]):
        path.write_bytes(damaged)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="xit.features"):
            assert FeatureCache(store).get(task, "data-1", tok, hp, True, compute) == first
        assert "damaged" in caplog.text
        assert path.read_bytes() == good
    assert len(computed) == 6


def test_a_different_tokenizer_has_another_identity(tiny_model_dir: Path, tmp_path: Path) -> None:
    tok = load_tokenizer(tiny_model_dir)
    same = load_tokenizer(tiny_model_dir)
    assert tokenizer_identity(tok) == tokenizer_identity(same)
    tok.save_pretrained(tmp_path / "t")
    other = load_tokenizer(tmp_path / "t")
    other.add_tokens(["zzqx"])
    assert tokenizer_identity(other) != tokenizer_identity(tok)
