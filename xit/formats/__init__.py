"""Task formats. Each owns featurisation, head, decoding and metric for its kind of task.

`get_format(name)` returns the format object; a `Task` names its format (see
`xit.tasks.registry`). Adding a format means adding a module here and one line below.
"""

from __future__ import annotations

from xit.formats.base import Format
from xit.formats.classification import Classification
from xit.formats.dual_encoder import DualEncoder
from xit.formats.mlm import MaskedLM
from xit.formats.multiple_choice import MultipleChoice
from xit.formats.span_qa import SpanQA
from xit.formats.tagging import Tagging

_FORMATS: dict[str, Format] = {
    f.name: f for f in (Classification(), SpanQA(), MultipleChoice(), Tagging(), DualEncoder(), MaskedLM())
}


def get_format(name: str) -> Format:
    if name not in _FORMATS:
        raise KeyError(f"format {name!r} has no trainable head (known: {', '.join(_FORMATS)})")
    return _FORMATS[name]
