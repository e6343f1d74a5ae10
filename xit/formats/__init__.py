"""Task formats. Each owns featurisation, head, decoding and metric for its kind of task.

`get_format(name)` returns the format object; a `Task` names its format (see `xit.tasks.registry`). Adding a
format means adding a module here, its class in `_CLASSES` and its entry in `REPORTS`.

This package imports no model library itself (the format modules do, when `get_format` or a class name asks
for one): `REPORTS`, what each format's scoring reports, is read when a spec is validated, without torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xit.errors import XitError

if TYPE_CHECKING:
    from xit.formats.base import Format


@dataclass(frozen=True)
class Reports:
    """The metric keys a format's scoring returns (0..100), and the headline a task descriptor gets by default."""

    metrics: tuple[str, ...]
    default: str


# One entry per format (its class reads its own as `Format.reports`), and per retrieval kind (scored by
# `xit.retrieval`, no head): what a registered task's or descriptor's `metric` may name.
REPORTS: dict[str, Reports] = {
    "classification": Reports(("accuracy",), "accuracy"),
    "multiple_choice": Reports(("accuracy",), "accuracy"),
    "tagging": Reports(("f1", "precision", "recall", "accuracy"), "f1"),
    "span_qa": Reports(("em", "f1", "em_f1"), "f1"),
    "dual_encoder": Reports(("mrr", "accuracy"), "mrr"),
    "mlm": Reports(("accuracy", "masked_tokens"), "accuracy"),
}
RETRIEVAL_REPORTS: dict[str, Reports] = {
    "tatoeba": Reports(("accuracy", "accuracy_xx_en", "accuracy_en_xx"), "accuracy"),
    "bucc": Reports(("f1", "precision", "recall"), "f1"),
    "lareqa": Reports(("map@20",), "map@20"),
    "mewslix": Reports(("map@20",), "map@20"),
}


def span_qa_room(max_length: int, doc_stride: int, special_tokens: int) -> int:
    """Question tokens a span-QA window can hold while keeping more context than ``doc_stride`` (the fast
    tokenizer's overlap must be shorter than the context room): below 1, the settings leave no room."""
    return max_length - special_tokens - doc_stride - 1


def reports(fmt: str, retrieval: str | None = None) -> Reports:
    """What a task of format `fmt` (a retrieval task: of kind `retrieval`, which it must name) is scored with."""
    if fmt != "retrieval":
        return REPORTS[fmt]
    if retrieval not in RETRIEVAL_REPORTS:
        raise XitError(f"format retrieval: retrieval kind {retrieval!r} is not one of "
                       f"{', '.join(RETRIEVAL_REPORTS)}")
    return RETRIEVAL_REPORTS[retrieval]


_FORMATS: dict[str, Format] = {}

# Each format class by name, and the module that holds it (imported only when asked for).
_CLASSES: dict[str, str] = {
    "Classification": "classification",
    "SpanQA": "span_qa",
    "MultipleChoice": "multiple_choice",
    "Tagging": "tagging",
    "DualEncoder": "dual_encoder",
    "MaskedLM": "mlm",
}


def _class(name: str) -> type[Format]:
    return getattr(importlib.import_module(f"xit.formats.{_CLASSES[name]}"), name)


def get_format(name: str) -> Format:
    if not _FORMATS:
        _FORMATS.update((c.name, c()) for c in map(_class, _CLASSES))
    if name not in _FORMATS:
        raise KeyError(f"format {name!r} has no trainable head (known: {', '.join(_FORMATS)})")
    return _FORMATS[name]


def __getattr__(name: str) -> Any:
    """The format classes by name (`from xit.formats import SpanQA`), their modules imported then."""
    if name in _CLASSES:
        return _class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
