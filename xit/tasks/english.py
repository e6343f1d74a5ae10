"""English intermediate tasks (MNLI, SQuAD v1.1, HellaSwag) and the loading helpers that the
XTREME loaders reuse (`xit.tasks.xtreme` imports the MNLI and SQuAD pieces).

Every task loads either from its production source on the Hugging Face Hub (`datasets`, imported
lazily) or, when given a `DataSource`, from local files in the original distribution format:

* MNLI: GLUE ``MNLI/{train,dev_matched}.tsv`` (falls back to the MultiNLI release's
  ``multinli_1.0/multinli_1.0_{train,dev_matched}.jsonl``); rows whose ``gold_label`` is not one
  of the three labels (``-``: no annotator consensus) are dropped.
* SQuAD v1.1: ``train-v1.1.json`` / ``dev-v1.1.json``, every gold answer kept.
* HellaSwag: ``hellaswag_{train,val}.jsonl`` (the test file has no labels, so no test split).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.loading import (
    HF_SPLIT,
    Rows,
    hf_load,
    hf_pair_rows,
    hf_squad_rows,
    local_file,
    make_io,
    nli_rows,
    read_jsonl,
    squad_rows,
)
from xit.tasks.registry import DataSource, Task, register

NLI_LABELS = ("entailment", "neutral", "contradiction")  # = the HF ClassLabel ids of GLUE/MNLI and XNLI


def hf_squad(split: str) -> Rows:
    """SQuAD v1.1 from the Hub (train, dev = validation)."""
    return hf_squad_rows(hf_load("rajpurkar/squad", "plain_text", HF_SPLIT[split]))


def hf_mnli_rows(split: str) -> Rows:
    """MNLI from GLUE; dev is validation_matched."""
    hf_split = {"train": "train", "dev": "validation_matched"}[split]
    return hf_pair_rows(hf_load("nyu-mll/glue", "mnli", hf_split), "premise", "hypothesis", 3)


# Local MNLI: GLUE's TSV first, the MultiNLI 1.0 release's jsonl second.
MNLI_FILES = {
    "train": ("MNLI/train.tsv", "multinli_1.0/multinli_1.0_train.jsonl"),
    "dev": ("MNLI/dev_matched.tsv", "multinli_1.0/multinli_1.0_dev_matched.jsonl"),
}
SQUAD_FILES = {"train": "train-v1.1.json", "dev": "dev-v1.1.json"}
HELLASWAG_FILES = {"train": "hellaswag_train.jsonl", "dev": "hellaswag_val.jsonl"}


def _english_only(splits: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    return lambda language: splits if language == "en" else ()


# --------------------------------------------------------------------------- tasks

_INTERMEDIATE = {
    "family": "english",
    "languages": ("en",),
    "roles": frozenset({"intermediate"}),
    "eval_split": "dev",  # none of the three has a labelled public test set
}


def _mnli_files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
    return [local_file(task, language, split, source, *MNLI_FILES[split])]


register(
    Task(
        name="mnli",
        format="classification",
        metric="accuracy",
        source="nyu-mll/glue:mnli (train, validation_matched)",
        labels=NLI_LABELS,
        defaults={"lr": 1e-5, "epochs": 2, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
        **_INTERMEDIATE,
        **make_io(
            _english_only(("train", "dev")),
            _mnli_files,
            lambda task, lang, split, files: nli_rows(task, files[0]),
            lambda task, lang, split: hf_mnli_rows(split),
        ),
    )
)

register(
    Task(
        name="squad",
        format="span_qa",
        metric="em_f1",
        source="rajpurkar/squad:plain_text (SQuAD v1.1 train, validation)",
        defaults={"lr": 3e-5, "epochs": 2, "batch_size": 32, "max_length": 384, "doc_stride": 128,
                  "warmup_ratio": 0.1},
        **_INTERMEDIATE,
        **make_io(
            _english_only(("train", "dev")),
            lambda task, lang, split, source: [local_file(task, lang, split, source, SQUAD_FILES[split])],
            lambda task, lang, split, files: squad_rows(files[0]),
            lambda task, lang, split: hf_squad(split),
        ),
    )
)


def hellaswag_row(r: dict[str, Any]) -> dict[str, Any]:
    """One HellaSwag record (original jsonl or HF row; HF stores label as a string)."""
    endings = list(r["endings"])
    if len(endings) != 4 or r.get("label") in (None, ""):
        raise XitError(f"HellaSwag record {r.get('ind', '?')}: expected 4 endings and a label")
    context = r.get("ctx") or f"{r.get('ctx_a', '')} {r.get('ctx_b', '')}".strip()
    return {"context": context, "question": "", "choices": endings, "label": int(r["label"])}


register(
    Task(
        name="hellaswag",
        format="multiple_choice",
        metric="accuracy",
        source="Rowan/hellaswag (train, validation)",
        num_choices=4,
        defaults={"lr": 1e-5, "epochs": 2, "batch_size": 16, "max_length": 128, "warmup_ratio": 0.1},
        **_INTERMEDIATE,
        **make_io(
            _english_only(("train", "dev")),
            lambda task, lang, split, source: [local_file(task, lang, split, source, HELLASWAG_FILES[split])],
            lambda task, lang, split, files: [hellaswag_row(r) for r in read_jsonl(files[0])],
            lambda task, lang, split: [
                hellaswag_row(r) for r in hf_load("Rowan/hellaswag", None, HF_SPLIT[split])
            ],
        ),
    )
)
