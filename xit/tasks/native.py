"""Native (not translated from English) labelled datasets in Finnish and Hungarian, as intermediate tasks.

They let a sweep compare English intermediate tasks with tasks in the target languages themselves (the
``fi-hu`` target group). Each trains and selects in its own language; none is a zero-shot target. Production
sources are the Hub's parquet (for script-based repositories, the Hub's own parquet export of the config);
local sources are the original distributions:

================  ============================================================================================
husst             HuLU's HuSST (Hungarian SST, sentence sentiment; nytud/HuSST ``data/sst_{train,dev}.json``):
                  a JSON list of ``{"id", "Sent", "label"}``, label negative/neutral/positive. Its test file
                  has no labels, so train and dev only.
hurte             HuLU's HuRTE (Hungarian RTE; nytud/HuRTE ``data/rte_{train,dev}.json``): a JSON list of
                  ``{"id", "premise", "hypothesis", "label"}``, label "0"/"1" (1: entailment).
turku-paraphrase  The Turku Paraphrase Corpus (TurkuNLP/Turku-paraphrase-corpus ``data-fi/{train,dev,test}.json``;
                  its ``opus-pb-*.json`` subsets have the same records): a JSON list of ``{"txt1", "txt2",
                  "label", ...}``. The class is the main label 1-4 (1 unrelated, 2 related but not a
                  paraphrase, 3 paraphrase in context, 4 universal paraphrase); the flags after it (``<``,
                  ``>``, ``i``, ``s``) are dropped, as the corpus README separates them from the label.
turku-ner         The Turku NER corpus (TurkuNLP/turku-ner-corpus ``data/conll/{train,dev,test}.tsv``):
                  ``token<TAB>tag`` lines, a blank line between sentences, six entity types in BIO.
================  ============================================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.loading import HF_SPLIT, Rows, hf_load, local_file, make_io
from xit.tasks.registry import Task, register
from xit.tasks.xtreme import panx_parse

_CLS = {"lr": 2e-5, "epochs": 3, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1}


def _native(name: str, fmt: str, language: str, metric: str, source: str, io: dict[str, Any],
            **kw: Any) -> Task:
    return register(Task(name=name, format=fmt, languages=(language,), metric=metric, source=source,
                         family="native", train_language=language, roles=frozenset({"intermediate"}),
                         eval_split="dev", **io, **kw))


def _json_list(path: Path, fields: set[str]) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise XitError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, list) or (data and not (isinstance(data[0], dict) and fields <= data[0].keys())):
        raise XitError(f"{path}: expected a JSON list of objects with {', '.join(sorted(fields))}")
    return data


def _label(task: Task, path: Path, i: int, value: Any) -> int:
    value = str(value).strip()
    if value not in task.labels:
        raise XitError(f"{path}: item {i}: label {value!r} is not one of {'/'.join(task.labels)}")
    return task.labels.index(value)


def _files(names: dict[str, tuple[str, ...]]) -> Any:
    return lambda task, lang, split, source: [local_file(task, lang, split, source, *names[split])]


def _splits(language: str, *splits: str) -> Any:
    return lambda lang: splits if lang == language else ()


# --------------------------------------------------------------------------- HuSST


def _husst_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    data = _json_list(files[0], {"Sent", "label"})
    return [{"text_a": r["Sent"], "text_b": None, "label": _label(task, files[0], i, r["label"])}
            for i, r in enumerate(data)]


def _husst_hub(task: Task, lang: str, split: str) -> Rows:
    return [{"text_a": r["Sent"], "text_b": None, "label": _label(task, Path("NYTK/HuSST"), i, r["label"])}
            for i, r in enumerate(hf_load("NYTK/HuSST", None, HF_SPLIT[split]))]


_native(
    "husst", "classification", "hu", "accuracy", "NYTK/HuSST (HuLU; train, validation)",
    make_io(_splits("hu", "train", "dev"), _files({"train": ("sst_train.json", "husst.sst_train.json"),
                                                   "dev": ("sst_dev.json", "husst.sst_dev.json")}),
            _husst_parse, _husst_hub),
    labels=("negative", "neutral", "positive"), defaults=dict(_CLS),
)  # fmt: skip


# --------------------------------------------------------------------------- HuRTE


def _hurte_rows(task: Task, where: Path, data: Any) -> Rows:
    return [{"text_a": r["premise"], "text_b": r["hypothesis"], "label": _label(task, where, i, r["label"])}
            for i, r in enumerate(data)]


def _hurte_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return _hurte_rows(task, files[0], _json_list(files[0], {"premise", "hypothesis", "label"}))


def _hurte_hub(task: Task, lang: str, split: str) -> Rows:
    return _hurte_rows(task, Path("NYTK/HuRTE"), hf_load("NYTK/HuRTE", None, HF_SPLIT[split]))


_native(
    "hurte", "classification", "hu", "accuracy", "NYTK/HuRTE (HuLU; train, validation)",
    make_io(_splits("hu", "train", "dev"), _files({"train": ("rte_train.json", "hurte.rte_train.json"),
                                                   "dev": ("rte_dev.json", "hurte.rte_dev.json")}),
            _hurte_parse, _hurte_hub),
    labels=("0", "1"), defaults={**_CLS, "epochs": 5},
)  # fmt: skip


# --------------------------------------------------------------------------- Turku Paraphrase Corpus


def turku_label(value: str) -> str:
    """The main label (1-4) of a Turku paraphrase label such as ``4<i``: the flags after it are dropped."""
    return str(value).strip()[:1]


def _turku_rows(task: Task, where: Path, data: Any, a: str, b: str) -> Rows:
    return [{"text_a": r[a], "text_b": r[b], "label": _label(task, where, i, turku_label(r["label"]))}
            for i, r in enumerate(data)]


def _turku_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return _turku_rows(task, files[0], _json_list(files[0], {"txt1", "txt2", "label"}), "txt1", "txt2")


def _turku_hub(task: Task, lang: str, split: str) -> Rows:
    # The "plain" config: each pair once (the "classification" config repeats each with its texts swapped).
    ds = hf_load("TurkuNLP/turku_paraphrase_corpus", "plain", HF_SPLIT[split])
    return _turku_rows(task, Path("TurkuNLP/turku_paraphrase_corpus"), ds, "text1", "text2")


_native(
    "turku-paraphrase", "classification", "fi", "accuracy",
    "TurkuNLP/turku_paraphrase_corpus:plain (Hub parquet export; train, validation, test)",
    make_io(_splits("fi", "train", "dev", "test"),
            _files({s: (f"{s}.json", f"opus-pb-{s}.json") for s in ("train", "dev", "test")}),
            _turku_parse, _turku_hub),
    labels=("1", "2", "3", "4"), defaults=dict(_CLS),
)  # fmt: skip


# --------------------------------------------------------------------------- Turku NER corpus

TURKU_NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-PRO", "I-PRO", "B-EVENT",
                    "I-EVENT", "B-DATE", "I-DATE")
# The Hub's ClassLabel order (TurkuNLP/turku_ner_corpus ner_tags).
_TURKU_NER_HUB = ("B-DATE", "B-EVENT", "B-LOC", "B-ORG", "B-PER", "B-PRO", "I-DATE", "I-EVENT", "I-LOC", "I-ORG",
                  "I-PER", "I-PRO", "O")


def _turku_ner_hub(task: Task, lang: str, split: str) -> Rows:
    ds = hf_load("TurkuNLP/turku_ner_corpus", None, HF_SPLIT[split])
    return [{"tokens": list(r["tokens"]), "tags": [_TURKU_NER_HUB[t] for t in r["ner_tags"]]} for r in ds]


_native(
    "turku-ner", "tagging", "fi", "f1", "TurkuNLP/turku_ner_corpus (Hub parquet export; train, validation, test)",
    make_io(_splits("fi", "train", "dev", "test"),
            _files({s: (f"{s}.tsv", f"conll/{s}.tsv") for s in ("train", "dev", "test")}),
            panx_parse, _turku_ner_hub),
    labels=TURKU_NER_LABELS, defaults={**_CLS, "epochs": 5},
)  # fmt: skip
