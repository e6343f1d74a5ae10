"""English intermediate tasks (MNLI, SQuAD v1.1, HellaSwag) and the loading helpers that the
XTREME loaders share (`xit.tasks.xtreme` imports them).

Every task loads either from its production source on the Hugging Face Hub (`datasets`, imported
lazily) or, when given a `DataSource`, from local files in the original distribution format:

* MNLI: GLUE ``MNLI/{train,dev_matched}.tsv`` (falls back to the MultiNLI release's
  ``multinli_1.0/multinli_1.0_{train,dev_matched}.jsonl``); rows whose ``gold_label`` is not one
  of the three labels (``-``: no annotator consensus) are dropped.
* SQuAD v1.1: ``train-v1.1.json`` / ``dev-v1.1.json``, every gold answer kept.
* HellaSwag: ``hellaswag_{train,val}.jsonl`` (the test file has no labels, so no test split).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.registry import DataSource, Task, register

Rows = list[dict[str, Any]]
FilesFn = Callable[[Task, str, str, DataSource], list[Path]]
ParseFn = Callable[[Task, str, str, list[Path]], Rows]
HubFn = Callable[[Task, str, str], Rows]

HF_SPLIT = {"train": "train", "dev": "validation", "test": "test"}
NLI_LABELS = ("entailment", "neutral", "contradiction")  # = the HF ClassLabel ids of GLUE/MNLI and XNLI


# --------------------------------------------------------------------------- shared plumbing


def make_io(
    splits: Callable[[str], Iterable[str]], files: FilesFn, parse: ParseFn, hub: HubFn
) -> dict[str, Any]:
    """`load_fn` and `local_files_fn` for a Task, both checking (language, split) first.

    ``splits(language)`` lists the splits the task has for a language; ``files`` resolves the
    local files (raising XitError naming a missing one); ``parse`` reads them; ``hub`` is the
    production path.
    """

    def check(task: Task, language: str, split: str) -> None:
        if language not in task.languages and language != task.train_language:
            raise XitError(
                f"task {task.name!r} has no language {language!r}; it has: {', '.join(task.languages)}"
            )
        ok = tuple(splits(language))
        if split not in ok:
            raise XitError(
                f"task {task.name!r} has no split {split!r} for language {language!r}; "
                f"it has: {', '.join(ok) or 'none'}"
            )

    def local_files_fn(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
        check(task, language, split)
        return files(task, language, split, source)

    def load_fn(task: Task, language: str, split: str, source: DataSource | None) -> Rows:
        if source is None:
            check(task, language, split)
            return hub(task, language, split)
        return parse(task, language, split, local_files_fn(task, language, split, source))

    return {"load_fn": load_fn, "local_files_fn": local_files_fn}


def hf_load(path: str, config: str | None, split: str) -> Any:
    """``datasets.load_dataset(path, config, split=split)``.

    datasets >= 4 refuses Hub repos that still carry a loading script; for those, read the Hub's
    own parquet export of the same config (branch ``refs/convert/parquet``, one folder per config).
    """
    import datasets

    try:
        return datasets.load_dataset(path, config, split=split)
    except RuntimeError as e:
        if "scripts are no longer supported" not in str(e):
            raise
        return datasets.load_dataset(
            path, revision="refs/convert/parquet", data_dir=config or "default", split=split
        )


def local_file(task: Task, language: str, split: str, source: DataSource, *names: str) -> Path:
    """The first existing file among the candidate default names (``data_files`` overrides all)."""
    paths = list(dict.fromkeys(source.file_for(language, split, n) for n in names))
    for p in paths:
        if p.is_file():
            return p
    raise XitError(f"task {task.name!r} ({language}/{split}): missing local data file {paths[0]}")


def require(task: Task, *paths: Path) -> list[Path]:
    for p in paths:
        if not p.is_file():
            raise XitError(f"task {task.name!r}: missing local data file {p}")
    return list(paths)


def read_lines(path: Path) -> list[str]:
    """Lines without terminators; LF or CRLF; a UTF-8 BOM is ignored."""
    lines = [ln.removesuffix("\r") for ln in path.read_text(encoding="utf-8-sig").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_tsv(path: Path) -> list[dict[str, str]]:
    """A headed TSV, split on tabs only (no quoting: MNLI and PAWS-X contain bare quotes)."""
    lines = read_lines(path)
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:] if ln]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for i, ln in enumerate(read_lines(path), 1):
        if ln.strip():
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError as e:
                raise XitError(f"{path}:{i}: invalid JSON line ({e.msg})") from None
    return out


def nli_rows(task: Task, path: Path, language: str | None = None) -> Rows:
    """MNLI/XNLI rows from GLUE/XNLI TSV or MultiNLI jsonl (sentence1, sentence2, gold_label)."""
    records = read_jsonl(path) if path.suffix == ".jsonl" else read_tsv(path)
    if records and not {"sentence1", "sentence2", "gold_label"} <= records[0].keys():
        raise XitError(f"{path}: expected columns sentence1, sentence2, gold_label")
    return [
        {"text_a": r["sentence1"], "text_b": r["sentence2"], "label": task.labels.index(r["gold_label"])}
        for r in records
        if r.get("gold_label") in task.labels and (language is None or r.get("language") == language)
    ]


def hf_pair_rows(ds: Iterable[dict[str, Any]], a: str, b: str, n_labels: int) -> Rows:
    """Sentence-pair rows from a HF split; label ids outside [0, n) (-1 = unlabelled) are dropped."""
    return [
        {"text_a": r[a], "text_b": r[b], "label": int(r["label"])}
        for r in ds
        if 0 <= int(r["label"]) < n_labels
    ]


def squad_rows(path: Path) -> Rows:
    """SQuAD v1.1 JSON (also XQuAD) to span_qa rows, all gold answers kept."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        return [
            {
                "id": str(qa["id"]),
                "context": para["context"],
                "question": qa["question"],
                "answers": {
                    "text": [a["text"] for a in qa["answers"]],
                    "answer_start": [int(a["answer_start"]) for a in qa["answers"]],
                },
            }
            for article in data["data"]
            for para in article["paragraphs"]
            for qa in para["qas"]
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise XitError(f"{path}: not SQuAD v1.1 JSON ({type(e).__name__}: {e})") from None


def hf_squad_rows(ds: Iterable[dict[str, Any]]) -> Rows:
    return [
        {
            "id": str(r["id"]),
            "context": r["context"],
            "question": r["question"],
            "answers": {
                "text": list(r["answers"]["text"]),
                "answer_start": [int(s) for s in r["answers"]["answer_start"]],
            },
        }
        for r in ds
    ]


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
