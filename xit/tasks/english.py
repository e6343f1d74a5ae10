"""English intermediate tasks (MNLI, SQuAD v1.1, HellaSwag, ANLI+, QQP, SST-2, CommonsenseQA, Cosmos QA,
Social IQa; CCG supertagging from local CCGbank files) and the loading helpers that the XTREME loaders
reuse (`xit.tasks.xtreme` imports the MNLI and SQuAD pieces).

Every task loads either from its production source on the Hugging Face Hub (`datasets`, imported
lazily) or, when given a `DataSource`, from local files in the original distribution format:

* MNLI: GLUE ``MNLI/{train,dev_matched}.tsv`` (falls back to the MultiNLI release's
  ``multinli_1.0/multinli_1.0_{train,dev_matched}.jsonl``); rows whose ``gold_label`` is not one
  of the three labels (``-``: no annotator consensus) are dropped.
* SQuAD v1.1: ``train-v1.1.json`` / ``dev-v1.1.json``, every gold answer kept.
* HellaSwag: ``hellaswag_{train,val}.jsonl`` (the test file has no labels, so no test split).
* The further tasks' layouts are listed where they are registered, below.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.loading import (
    HF_SPLIT,
    FilesFn,
    Rows,
    hf_load,
    hf_pair_rows,
    hf_parquet_export,
    hf_squad_rows,
    local_file,
    local_root,
    make_io,
    nli_rows,
    read_jsonl,
    read_lines,
    read_tsv,
    require,
    squad_rows,
)
from xit.tasks.registry import DataSource, Task, file_identity, register

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
_QA_DEFAULTS = {"lr": 3e-5, "epochs": 2, "batch_size": 32, "max_length": 384, "doc_stride": 128, "warmup_ratio": 0.1}


def _english_only(splits: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    return lambda language: splits if language == "en" else ()


# --------------------------------------------------------------------------- tasks

_INTERMEDIATE = {
    "family": "english",
    "languages": ("en",),
    "roles": frozenset({"intermediate"}),
    "eval_split": "dev",  # none of the three has a labelled public test set
}


def _english(name: str, fmt: str, metric: str, source: str, *, files: dict[str, Any] | FilesFn,
             parse: Callable[[Task, list[Path]], Rows], hub: Callable[[Task, str], Rows],
             defaults: dict[str, Any], splits: tuple[str, ...] = ("train", "dev"), **kw: Any) -> Task:
    """An English intermediate task in one declaration: its splits (train and dev: none of these tasks has a
    labelled public test set), its local files (`files`: each split's default file names, the first present read,
    or a function), how they parse, and `hub(task, split)`, the production source."""
    if isinstance(files, dict):
        names = {split: (n,) if isinstance(n, str) else tuple(n) for split, n in files.items()}

        def files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
            return [local_file(task, language, split, source, *names[split])]

    return Task(name=name, format=fmt, metric=metric, source=source, defaults=defaults, **_INTERMEDIATE, **kw,
                **make_io(_english_only(splits), files, lambda task, lang, split, fs: parse(task, fs),
                          lambda task, lang, split: hub(task, split)))


register(_english(
    "mnli", "classification", "accuracy", "nyu-mll/glue:mnli (train, validation_matched)", labels=NLI_LABELS,
    defaults={"lr": 1e-5, "epochs": 2, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
    files=MNLI_FILES, parse=lambda task, files: nli_rows(task, files[0]), hub=lambda task, split: hf_mnli_rows(split),
))

register(_english(
    "squad", "span_qa", "em_f1", "rajpurkar/squad:plain_text (SQuAD v1.1 train, validation)",
    defaults=_QA_DEFAULTS, files=SQUAD_FILES, parse=lambda task, files: squad_rows(files[0]),
    hub=lambda task, split: hf_squad(split),
))


def hellaswag_row(r: dict[str, Any]) -> dict[str, Any]:
    """One HellaSwag record (original jsonl or HF row; HF stores label as a string)."""
    endings = list(r["endings"])
    if len(endings) != 4 or r.get("label") in (None, ""):
        raise XitError(f"HellaSwag record {r.get('ind', '?')}: expected 4 endings and a label")
    context = r.get("ctx") or f"{r.get('ctx_a', '')} {r.get('ctx_b', '')}".strip()
    return {"context": context, "question": "", "choices": endings, "label": int(r["label"])}


register(_english(
    "hellaswag", "multiple_choice", "accuracy", "Rowan/hellaswag (train, validation)", num_choices=4,
    defaults={"lr": 1e-5, "epochs": 2, "batch_size": 16, "max_length": 128, "warmup_ratio": 0.1},
    files=HELLASWAG_FILES, parse=lambda task, files: [hellaswag_row(r) for r in read_jsonl(files[0])],
    hub=lambda task, split: [hellaswag_row(r) for r in hf_load("Rowan/hellaswag", None, HF_SPLIT[split])],
))


# --------------------------------------------------------------------------- more intermediate tasks
#
# The X-STILTs intermediate tasks beyond MNLI/SQuAD/HellaSwag. Local layouts (relative to data_dir):
#
# * anli-plus: ANLI ``anli_v1.0/R{1,2,3}/{train,dev}.jsonl`` (labels e/n/c); for train also MNLI (as
#   above), SNLI ``snli_1.0/snli_1.0_train.jsonl`` and FEVER-NLI ``nli_fever/train_fitems.jsonl``.
#   A component file can be overridden with data_files "<split>.<component>" (components: anli_r1,
#   anli_r2, anli_r3, mnli, snli, fever). Dev is ANLI R1-R3 dev concatenated (3,200 pairs).
# * qqp: GLUE ``QQP/{train,dev}.tsv``; sst2: GLUE ``SST-2/{train,dev}.tsv``.
# * commonsenseqa: ``{train,dev}_rand_split.jsonl``; cosmosqa: ``{train,valid}.csv`` (as in the
#   wilburOne/cosmosqa repo; ``.jsonl`` accepted too); socialiqa: ``socialIQa_v1.4_{trn,dev}.jsonl``
#   with ``socialIQa_v1.4_{trn,dev}-labels.lst``.

ANLI_ROUNDS = ("r1", "r2", "r3")
ANLI_LETTER = {"e": "entailment", "n": "neutral", "c": "contradiction"}
FEVER_LABEL = {"SUPPORTS": "entailment", "NOT ENOUGH INFO": "neutral", "REFUTES": "contradiction"}


def _component_file(task: Task, language: str, split: str, source: DataSource, component: str,
                    *names: str) -> Path:
    """One component file of a multi-file task: data_files "<lang>.<split>.<component>" or
    "<split>.<component>" first, else the first existing default name under data_dir."""
    return local_file(task, language, split, source, *names, keys=(f"{language}.{split}.{component}",
                                                                   f"{split}.{component}"),
                      what=f" for component {component!r}")


def _anli_plus_files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
    files = [
        _component_file(task, language, split, source, f"anli_{r}", f"anli_v1.0/R{r[1]}/{split}.jsonl")
        for r in ANLI_ROUNDS
    ]
    if split == "train":
        files += [
            _component_file(task, language, split, source, "mnli", *MNLI_FILES["train"]),
            _component_file(task, language, split, source, "snli", "snli_1.0/snli_1.0_train.jsonl"),
            _component_file(task, language, split, source, "fever", "nli_fever/train_fitems.jsonl"),
        ]
    return files


def _labelled(task: Task, a: Any, b: Any, label: str | None) -> dict[str, Any] | None:
    if label not in task.labels or not a or not b:
        return None
    return {"text_a": a, "text_b": b, "label": task.labels.index(label)}


def anli_jsonl_rows(task: Task, path: Path) -> Rows:
    """ANLI jsonl (uid, context, hypothesis, label e/n/c); rows without a known label are dropped."""
    out = []
    for r in read_jsonl(path):
        row = _labelled(task, r.get("context", r.get("premise")), r.get("hypothesis"),
                        ANLI_LETTER.get(str(r.get("label")), r.get("label")))
        if row is not None:
            out.append(row)
    return out


def fever_nli_rows(task: Task, path: Path) -> Rows:
    """NLI-style FEVER jsonl (cid, fid, query = the claim, context = the evidence, label SUPPORTS/
    REFUTES/NOT ENOUGH INFO): premise = evidence, hypothesis = claim."""
    out = []
    for r in read_jsonl(path):
        row = _labelled(task, r.get("context", r.get("premise")), r.get("query", r.get("hypothesis")),
                        FEVER_LABEL.get(str(r.get("label")), r.get("label")))
        if row is not None:
            out.append(row)
    return out


def _anli_plus_parse(task: Task, files: list[Path]) -> Rows:
    rows = [r for f in files[:3] for r in anli_jsonl_rows(task, f)]
    if files[3:]:  # train: ANLI R1-R3, then MNLI, SNLI and FEVER-NLI (`_anli_plus_files`)
        mnli, snli, fever = files[3:]
        rows += nli_rows(task, mnli) + nli_rows(task, snli) + fever_nli_rows(task, fever)
    return rows


def hf_anli_plus(split: str) -> Rows:
    """ANLI+ from the Hub: ANLI R1-R3 + MNLI + SNLI + FEVER-NLI train; ANLI R1-R3 dev."""
    anli_split = {"train": "train", "dev": "dev"}[split]
    rows = [
        r
        for rnd in ANLI_ROUNDS
        for r in hf_pair_rows(
            hf_load("facebook/anli", "plain_text", f"{anli_split}_{rnd}"), "premise", "hypothesis", 3
        )
    ]
    if split == "train":
        rows += hf_mnli_rows("train")
        rows += hf_pair_rows(hf_load("stanfordnlp/snli", "plain_text", "train"), "premise", "hypothesis", 3)
        # pietrolesci/nli_fever stores them the wrong way around (its discussion #2, "Premise and hypothesis
        # wrong way around?"): its "premise" is FEVER's claim (the NLI-FEVER release's ``query``) and its
        # "hypothesis" the evidence (``context``). Read back in the release's orientation, as the local path
        # (`fever_nli_rows`): premise = evidence, hypothesis = claim.
        rows += hf_pair_rows(hf_load("pietrolesci/nli_fever", None, "train"), "hypothesis", "premise", 3)
    return rows


register(_english(
    "anli-plus", "classification", "accuracy",
    "facebook/anli (train_r1-3, dev_r1-3) + nyu-mll/glue:mnli + stanfordnlp/snli + "
    "pietrolesci/nli_fever (train; its premise/hypothesis columns swapped back: evidence -> claim)",
    labels=NLI_LABELS, defaults={"lr": 1e-5, "epochs": 1, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
    files=_anli_plus_files, parse=_anli_plus_parse, hub=lambda task, split: hf_anli_plus(split),
))


QQP_FILES = {"train": "QQP/train.tsv", "dev": "QQP/dev.tsv"}
SST2_FILES = {"train": "SST-2/train.tsv", "dev": "SST-2/dev.tsv"}


def qqp_rows(path: Path) -> Rows:
    """GLUE QQP TSV (id, qid1, qid2, question1, question2, is_duplicate); malformed lines are dropped."""
    records = read_tsv(path)
    if records and not {"question1", "question2", "is_duplicate"} <= records[0].keys():
        raise XitError(f"{path}: expected columns question1, question2, is_duplicate")
    return [
        {"text_a": r["question1"], "text_b": r["question2"], "label": int(r["is_duplicate"])}
        for r in records
        if r.get("is_duplicate") in ("0", "1") and r.get("question1") and r.get("question2")
    ]


def sst2_rows(path: Path) -> Rows:
    """GLUE SST-2 TSV (sentence, label 0/1): single-sentence rows, text_b None."""
    records = read_tsv(path)
    if records and not {"sentence", "label"} <= records[0].keys():
        raise XitError(f"{path}: expected columns sentence, label")
    return [
        {"text_a": r["sentence"], "text_b": None, "label": int(r["label"])}
        for r in records
        if r.get("label") in ("0", "1") and r.get("sentence")
    ]


register(_english(
    "qqp", "classification", "accuracy", "nyu-mll/glue:qqp (train, validation)",
    labels=("not_duplicate", "duplicate"),
    defaults={"lr": 1e-5, "epochs": 2, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
    files=QQP_FILES, parse=lambda task, files: qqp_rows(files[0]),
    hub=lambda task, split: hf_pair_rows(hf_load("nyu-mll/glue", "qqp", HF_SPLIT[split]), "question1", "question2", 2),
))

register(_english(
    "sst2", "classification", "accuracy", "nyu-mll/glue:sst2 (train, validation)", labels=("negative", "positive"),
    defaults={"lr": 1e-5, "epochs": 3, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
    files=SST2_FILES, parse=lambda task, files: sst2_rows(files[0]),
    hub=lambda task, split: [{"text_a": r["sentence"], "text_b": None, "label": int(r["label"])}
                             for r in hf_load("nyu-mll/glue", "sst2", HF_SPLIT[split]) if int(r["label"]) in (0, 1)],
))


# --------------------------------------------------------------------------- multiple choice

CSQA_FILES = {"train": "train_rand_split.jsonl", "dev": "dev_rand_split.jsonl"}
COSMOS_FILES = {"train": ("train.csv", "train.jsonl"), "dev": ("valid.csv", "valid.jsonl")}
SIQA_STEM = {"train": "socialIQa_v1.4_trn", "dev": "socialIQa_v1.4_dev"}


def _mc_row(context: str, question: str, choices: list[str], label: int, n: int, what: str) -> dict[str, Any]:
    if len(choices) != n or not 0 <= label < n:
        raise XitError(f"{what}: expected {n} choices and a label in 0..{n - 1}")
    return {"context": context, "question": question, "choices": choices, "label": label}


def csqa_row(r: dict[str, Any]) -> dict[str, Any]:
    """One CommonsenseQA record, original jsonl (question.stem, question.choices[{label, text}]) or HF
    (question, choices {label: [...], text: [...]}); choices in label order, context = the question."""
    q = r["question"]
    if isinstance(q, dict):
        stem, pairs = q["stem"], [(c["label"], c["text"]) for c in q["choices"]]
    else:
        stem, pairs = q, list(zip(r["choices"]["label"], r["choices"]["text"], strict=True))
    pairs.sort()
    keys = [k for k, _ in pairs]
    key = r.get("answerKey")
    if key not in keys:
        raise XitError(f"CommonsenseQA record {r.get('id', '?')}: answerKey {key!r} not among {keys}")
    return _mc_row(stem, "", [t for _, t in pairs], keys.index(key), 5, f"CommonsenseQA record {r.get('id', '?')}")


def cosmos_row(r: dict[str, Any]) -> dict[str, Any]:
    """One Cosmos QA record (csv, jsonl or HF: context, question, answer0..3, label)."""
    return _mc_row(r["context"], r["question"], [r[f"answer{i}"] for i in range(4)], int(r["label"]), 4,
                   f"Cosmos QA record {r.get('id', '?')}")


def cosmos_local_rows(path: Path) -> Rows:
    if path.suffix == ".jsonl":
        records = read_jsonl(path)
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:
            records = list(csv.DictReader(f))
    if records and not {"context", "question", "answer0", "answer3", "label"} <= records[0].keys():
        raise XitError(f"{path}: expected columns context, question, answer0..answer3, label")
    return [cosmos_row(r) for r in records if str(r.get("label", "")).strip() not in ("", "-1")]


def siqa_row(r: dict[str, Any], label: int) -> dict[str, Any]:
    """One Social IQa record (context, question, answerA/B/C) with its 0-based label."""
    return _mc_row(r["context"], r["question"], [r["answerA"], r["answerB"], r["answerC"]], label, 3,
                   "Social IQa record")


def _siqa_files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
    data = local_file(task, language, split, source, f"{SIQA_STEM[split]}.jsonl")
    return require(task, data, data.with_name(data.stem + "-labels.lst"))


def _siqa_parse(task: Task, files: list[Path]) -> Rows:
    records = read_jsonl(files[0])
    labels = [ln.strip() for ln in read_lines(files[1]) if ln.strip()]
    if len(labels) != len(records):
        raise XitError(f"{files[1]}: {len(labels)} labels for {len(records)} records in {files[0].name}")
    out = []
    for i, (r, lab) in enumerate(zip(records, labels, strict=True), 1):
        if lab not in ("1", "2", "3"):
            raise XitError(f"{files[1]}:{i}: label {lab!r} is not 1, 2 or 3")
        out.append(siqa_row(r, int(lab) - 1))
    return out


register(_english(
    "commonsenseqa", "multiple_choice", "accuracy", "tau/commonsense_qa (train, validation)", num_choices=5,
    defaults={"lr": 1e-5, "epochs": 3, "batch_size": 16, "max_length": 64, "warmup_ratio": 0.1},
    files=CSQA_FILES, parse=lambda task, files: [csqa_row(r) for r in read_jsonl(files[0])],
    hub=lambda task, split: [csqa_row(r) for r in hf_load("tau/commonsense_qa", None, HF_SPLIT[split])
                             if r.get("answerKey")],
))

register(_english(
    "cosmosqa", "multiple_choice", "accuracy",
    "allenai/cosmos_qa's parquet export (refs/convert/parquet default/{train,validation}: the same data "
    "as its loading script, which datasets >= 4 no longer runs)", num_choices=4,
    defaults={"lr": 1e-5, "epochs": 2, "batch_size": 16, "max_length": 256, "warmup_ratio": 0.1},
    files=COSMOS_FILES, parse=lambda task, files: cosmos_local_rows(files[0]),
    hub=lambda task, split: [cosmos_row(r) for r in hf_parquet_export("allenai/cosmos_qa", "default", HF_SPLIT[split])
                             if int(r["label"]) >= 0],
))

register(_english(
    "socialiqa", "multiple_choice", "accuracy",
    "allenai/social_i_qa's parquet export (refs/convert/parquet default/{train,validation}: the same "
    "data as its loading script, which datasets >= 4 no longer runs)", num_choices=3,
    defaults={"lr": 1e-5, "epochs": 2, "batch_size": 16, "max_length": 128, "warmup_ratio": 0.1},
    files=_siqa_files, parse=_siqa_parse,
    hub=lambda task, split: [siqa_row(r, int(r["label"]) - 1)
                             for r in hf_parquet_export("allenai/social_i_qa", "default", HF_SPLIT[split])],
))


# --------------------------------------------------------------------------- CCG supertagging (local only)
#
# CCGbank (LDC2005T13) is licensed, so there is no production source: the task reads the distributed AUTO
# files, ``data/AUTO/{section}/wsj_{section}NN.auto`` under data_dir (standard splits: train 02-21, dev 00,
# test 23), or one file per split via data_files. Each derivation follows an ``ID=...`` line; a leaf is
# ``(<L category modPOS origPOS word predarg>)``. The label inventory is the standard one for supertagging
# (Clark & Curran, 2007): the categories seen at least 10 times in the training sections (425 for CCGbank
# 02-21), derived from the user's training files when a stage first needs it; any other category is tagged
# CCG_OTHER. `make_ccg_task` builds a variant over a fixed inventory instead.

CCG_SECTIONS = {
    "train": tuple(f"{s:02d}" for s in range(2, 22)),
    "dev": ("00",),
    "test": ("23",),
}
CCG_OTHER = "<other>"
CCG_MIN_COUNT = 10
_CCG_LEAF = re.compile(r"<L (\S+) \S+ \S+ (\S+) \S+>")


def read_ccg_auto(path: Path) -> list[tuple[list[str], list[str]]]:
    """(words, supertags) for every derivation of a CCGbank AUTO file."""
    out = []
    lines = read_lines(path)
    for i, ln in enumerate(lines, 1):
        if not ln.strip() or ln.startswith("ID="):
            continue
        leaves = _CCG_LEAF.findall(ln)
        if not leaves:
            raise XitError(f"{path}:{i}: not a CCGbank AUTO derivation (no '(<L ...>)' leaves)")
        out.append(([w for _, w in leaves], [c for c, _ in leaves]))
    return out


def ccg_label_set(sentences: list[tuple[list[str], list[str]]], min_count: int = CCG_MIN_COUNT) -> tuple[str, ...]:
    """The categories seen at least ``min_count`` times, most frequent first (ties by name)."""
    counts = Counter(t for _, tags in sentences for t in tags)
    return tuple(sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c)))


def _ccg_files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
    return local_root(task, source, (f"{language}.{split}", split),
                      lambda root: _ccg_search(task, language, split, root),
                      missing=f"task {task.name!r} ({language}/{split}): set data_dir (CCGbank root) or data_files "
                              f"'{split}'")


def _ccg_search(task: Task, language: str, split: str, root: Path) -> list[Path]:
    auto = next((d for d in (root / "data" / "AUTO", root / "AUTO", root) if (d / CCG_SECTIONS[split][0]).is_dir()),
                root / "data" / "AUTO")
    files = []
    for sec in CCG_SECTIONS[split]:
        found = sorted((auto / sec).glob("*.auto"))
        if not found:
            raise XitError(f"task {task.name!r} ({language}/{split}): missing local data file {auto / sec}/wsj_*.auto")
        files += found
    return files


def _ccg_parse(task: Task, files: list[Path]) -> Rows:
    known = set(task.labels)
    return [
        {"tokens": words, "tags": [t if t in known else CCG_OTHER for t in tags]}
        for f in files
        for words, tags in read_ccg_auto(f)
    ]


def _ccg_no_hub(task: Task, split: str) -> Rows:
    raise XitError(
        f"task {task.name!r}: CCGbank is licensed (LDC2005T13) and has no public source; "
        "give it as local files (data_dir: the CCGbank root holding data/AUTO)"
    )


_CCG_INVENTORIES: dict[tuple, tuple[str, ...]] = {}


def ccg_inventory(task: Task, source: DataSource | None) -> tuple[str, ...]:
    """The categories seen >= CCG_MIN_COUNT times in the task's training files, then CCG_OTHER (cached per file set)."""
    if source is None:
        _ccg_no_hub(task, "train")
    files = _ccg_files(task, "en", "train", source)
    key = tuple(file_identity(f) for f in files)
    if key not in _CCG_INVENTORIES:
        labels = ccg_label_set([s for f in files for s in read_ccg_auto(f)])
        if not labels:
            raise XitError(f"task {task.name!r}: no CCG category occurs {CCG_MIN_COUNT} times in the training files")
        _CCG_INVENTORIES[key] = (*labels, CCG_OTHER)
    return _CCG_INVENTORIES[key]


def make_ccg_task(labels: tuple[str, ...] = (), name: str = "ccg") -> Task:
    """CCG supertagging over ``labels`` (CCG_OTHER appended), or with no labels over the standard inventory
    derived from the training sections (categories seen >= 10 times)."""
    if labels and CCG_OTHER not in labels:
        labels = (*labels, CCG_OTHER)
    return _english(
        name, "tagging", "accuracy", "CCGbank (LDC2005T13, local AUTO files only; train 02-21, dev 00, test 23)",
        labels=labels, labels_from=None if labels else ccg_inventory,
        labels_note="" if labels else f"categories seen >= {CCG_MIN_COUNT} times in the training files "
                                      "(425 in CCGbank 02-21), + <other>",
        local_only=True, defaults={"lr": 2e-5, "epochs": 2, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1},
        splits=("train", "dev", "test"), files=_ccg_files, parse=_ccg_parse, hub=_ccg_no_hub,
    )


register(make_ccg_task())


# --------------------------------------------------------------------------- SQuAD v2.0
# Local: ``train-v2.0.json`` / ``dev-v2.0.json``, read by the v1.1 reader: an unanswerable question
# (``"is_impossible": true``, ``"answers": []``; its ``plausible_answers`` are ignored) comes through
# with ``answers: {"text": [], "answer_start": []}``, as on the Hub. The task declares `no_answer`, which
# `xit.formats.span_qa` reads (training on token 0, null-score decoding, official v2.0 scoring).

SQUAD2_FILES = {"train": "train-v2.0.json", "dev": "dev-v2.0.json"}


def hf_squad2(split: str) -> Rows:
    """SQuAD v2.0 from the Hub (train, dev = validation); unanswerable questions have empty answers."""
    return hf_squad_rows(hf_load("rajpurkar/squad_v2", "squad_v2", HF_SPLIT[split]))


register(_english(
    "squad2", "span_qa", "em_f1", "rajpurkar/squad_v2:squad_v2 (SQuAD v2.0 train, validation)", no_answer=True,
    defaults=_QA_DEFAULTS, files=SQUAD2_FILES, parse=lambda task, files: squad_rows(files[0]),
    hub=lambda task, split: hf_squad2(split),
))
