"""The row each format reads, one type per format: what every task loader of that format returns.

Plain dicts at run time (rows travel as JSON and come from `datasets` as dicts); these `TypedDict`s name their
keys and types for the loaders and the formats. Retrieval rows (one per language, the whole evaluation set) are
described in `xit.tasks.registry`.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class ClassificationRow(TypedDict):
    text_a: str
    text_b: str | None  # None: a single-sentence task
    label: int  # an index into `Task.labels`
    genre: NotRequired[str]  # XNLI's local files: MNLI's genre of the pair (evaluation slices)


class Answers(TypedDict):
    text: list[str]  # every gold answer; [] for an unanswerable question (a task declaring `no_answer`)
    answer_start: list[int]  # character offsets into the context


class SpanQARow(TypedDict):
    id: str
    context: str
    question: str
    answers: Answers
    language: NotRequired[str]  # the answer language, for a task scored with MLQA's normalisation


class MultipleChoiceRow(TypedDict):
    context: str
    question: str  # may be "": a choice is scored as the pair (context, question + " " + choice)
    choices: list[str]
    label: int


class TaggingRow(TypedDict):
    tokens: list[str]  # words
    tags: list[str]  # one string tag per word


class MLMRow(TypedDict):
    text: str  # raw text, masked by the format
    language: str


class DualEncoderRow(TypedDict):
    query: str
    candidate: str  # its relevant candidate
    candidate_context: NotRequired[str | None]  # encoded as the pair (candidate, context) where given
