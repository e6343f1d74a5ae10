"""Tokenise once: featurised training sets cached in the store and shared by every stage that needs them.

The target training set of a sweep is the same for every intermediate branch (the paper grid trains each
target on top of 11 of them): its features are computed by the first target stage and read by the others.
An entry is ``features/<key>.json`` where the key hashes everything the features are a function of:

* the task's data fingerprint (`Task.data_fingerprint` of its training split: local file contents or the
  production source id) and the task's identity (name, format and format version, labels, language);
* the tokenizer's identity (its class, full serialisation, special tokens, maximum length, sides);
* the featurisation parameters: every hyper-parameter except the training-only ones below (so `max_length`,
  `doc_stride`, `max_query_length`, `max_train_examples`, the seed MLM masks are drawn from, and any future
  one count), and which rows (train or dev).

An entry is one object written atomically (`Store.write_bytes`): a header line with the format tag, the
number of features and the sha256 of the payload, then the features as JSON (no pickle: a store is data,
not code). A read checks the hash and the count; a damaged or unreadable entry is never used: it is removed,
the features are computed again and written back. Features that do not survive JSON unchanged (tuples,
arrays) are not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from xit.errors import XitError
from xit.store import Store

log = logging.getLogger(__name__)

PREFIX = "features"
MAGIC = "xit-features 1"

# Hyper-parameters that change how a model is trained or scored, never what a row featurises to.
TRAINING_ONLY = frozenset({
    "lr", "epochs", "batch_size", "weight_decay", "warmup_ratio", "max_grad_norm", "evals_per_epoch",
    "eval_every_steps", "patience", "grad_accum_steps", "precision", "compile", "group_by_length", "max_dev_examples",
    "max_eval_examples", "eval_batch_size", "max_answer_length", "n_best", "null_score_diff_threshold",
})


def tokenizer_identity(tokenizer: Any) -> str:
    """A hash of what decides how `tokenizer` splits and encodes text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Its serialisation, less the truncation and padding settings the last call left in it (a tokenizer
        # saved after featurising carries them in tokenizer.json; every call sets its own, so they do not change
        # how text is encoded): cleared while serialising, then put back.
        truncation, padding = backend.truncation, backend.padding
        backend.no_truncation()
        backend.no_padding()
        try:
            body = backend.to_str()
        finally:
            if truncation:
                backend.enable_truncation(**truncation)
            if padding:
                backend.enable_padding(**{k: v for k, v in padding.items() if k != "length" or v is not None})
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    meta = {"class": type(tokenizer).__name__, "max": getattr(tokenizer, "model_max_length", None),
            "padding_side": getattr(tokenizer, "padding_side", None),
            "truncation_side": getattr(tokenizer, "truncation_side", None),
            "special": [str(t) for t in getattr(tokenizer, "all_special_tokens", [])]}
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    h.update(body.encode())
    return h.hexdigest()[:32]


def feature_key(task: Any, data_id: str, tokenizer_id: str, hp: dict[str, Any], train: bool) -> str:
    """The cache key of `task`'s featurised rows (see the module docstring)."""
    from xit.tasks.registry import FORMAT_VERSIONS

    params = {k: v for k, v in hp.items() if k not in TRAINING_ONLY}
    ident = {"task": task.name, "format": task.format, "format_version": FORMAT_VERSIONS.get(task.format),
             "labels": list(task.labels) if getattr(task, "labels", None) else None,
             "language": task.train_language, "data": data_id, "tokenizer": tokenizer_id, "params": params,
             "train": train}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=repr).encode()).hexdigest()[:32]


class FeatureCache:
    """Featurised datasets in `store` under ``features/``; counts what it computed and what it read."""

    def __init__(self, store: Store):
        self.store = store
        self.hits = self.misses = 0
        self._tokenizers: dict[int, tuple[Any, str]] = {}

    def _tokenizer_id(self, tokenizer: Any) -> str:
        known = self._tokenizers.get(id(tokenizer))
        if known is None or known[0] is not tokenizer:
            known = self._tokenizers[id(tokenizer)] = (tokenizer, tokenizer_identity(tokenizer))
        return known[1]

    def get(self, task: Any, data_id: str, tokenizer: Any, hp: dict[str, Any], train: bool,
            compute: Callable[[], list[dict]]) -> list[dict]:
        """The cached features of this (task data, tokenizer, parameters), or `compute()`'s, then cached."""
        key = f"{PREFIX}/{feature_key(task, data_id, self._tokenizer_id(tokenizer), hp, train)}.json"
        found = self._read(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        features = compute()
        self._write(key, features)
        return features

    def _read(self, key: str) -> list[dict] | None:
        try:
            if not self.store.exists(key):
                return None
            blob = self.store.read_bytes(key)
            head, _, body = blob.partition(b"\n")
            magic, n, digest = head.decode().rsplit(" ", 2)
            if magic != MAGIC:
                raise ValueError(f"not a features object ({magic!r})")
            if hashlib.sha256(body).hexdigest() != digest:
                raise ValueError("checksum mismatch")
            features = json.loads(body)
            if not isinstance(features, list) or len(features) != int(n):
                raise ValueError("wrong number of features")
            return features
        except (OSError, XitError, ValueError) as e:  # ChecksumError (a WorkError) from a verified download too
            log.warning("cached features %s are damaged (%s: %s); computing them again", key, type(e).__name__, e)
            try:
                self.store.delete_prefix(key)
            except (OSError, XitError):
                pass
            return None

    def _write(self, key: str, features: list[dict]) -> None:
        try:
            body = json.dumps(features, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            return
        if json.loads(body) != features:  # tuples or other types JSON gives back changed: not cached
            return
        head = f"{MAGIC} {len(features)} {hashlib.sha256(body).hexdigest()}\n".encode()
        try:
            self.store.write_bytes(key, head + body)
        except (OSError, XitError) as e:  # a cache: the stage goes on without it
            log.warning("cannot cache features at %s (%s: %s)", key, type(e).__name__, e)
