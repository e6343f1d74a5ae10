"""Loading helpers shared by the task families: local original-format readers and the Hub path.

`make_io` builds a Task's `load_fn`/`local_files_fn` pair from four small functions;
`hf_load` is the production path through `datasets`; the readers parse the original
distribution formats (TSV, JSONL, SQuAD JSON) robustly (CRLF, BOM).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.formats.rows import ClassificationRow, SpanQARow
from xit.tasks.registry import DataSource, Task

Rows = list[dict[str, Any]]
FilesFn = Callable[[Task, str, str, DataSource], list[Path]]
ParseFn = Callable[[Task, str, str, list[Path]], Rows]
HubFn = Callable[[Task, str, str], Rows]

HF_SPLIT = {"train": "train", "dev": "validation", "test": "test"}


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


def hf_parquet_export(path: str, config: str, split: str) -> Any:
    """One split of the Hub's own parquet export of a dataset (branch ``refs/convert/parquet``, folder
    ``<config>/<split>/``), read as plain parquet files: for Hub repos that still hold a loading script, which
    `datasets` >= 4 refuses to run, so not even their repo id resolves to a builder."""
    import datasets

    files = f"hf://datasets/{path}@{PARQUET_EXPORT}/{config}/{split}/*.parquet"
    return datasets.load_dataset("parquet", data_files={split: files}, split=split)


PARQUET_EXPORT = "refs%2Fconvert%2Fparquet"  # the branch, URL-encoded as hf:// paths need it


def local_file(task: Task, language: str, split: str, source: DataSource, *names: str,
               keys: tuple[str, ...] = (), what: str = "") -> Path:
    """The first existing file among `source.candidates`: ``data_files`` under `keys` (default
    "<language>.<split>", then "<split>"), else the default `names` under ``data_dir``. `what` names the part
    of a multi-file task the file is (in messages)."""
    keys = keys or (f"{language}.{split}", split)
    paths = list(dict.fromkeys(source.candidates(keys, names)))
    if not paths:
        raise XitError(f"task {task.name!r} ({language}/{split}): no local file{what}: set data_files "
                       f"'{keys[0]}' or data_dir")
    for p in paths:
        if p.is_file():
            return p
    raise XitError(f"task {task.name!r} ({language}/{split}): missing local data file {paths[0]}")


def local_root(task: Task, source: DataSource, keys: tuple[str, ...], search: Callable[[Path], list[Path]], *,
               missing: str | None, check: bool = True) -> list[Path]:
    """Local files found by searching a tree (UD treebanks, CCGbank sections, MLM text) rather than by one default
    name (`local_file`): the one file ``data_files`` names under the first of `keys` (it overrides the search;
    checked to exist unless `check` is False), else ``search(data_dir)``. Neither given: XitError `missing`, or []
    when `missing` is None."""
    given = source.given(keys)
    if given is not None:
        return require(task, given) if check else [given]
    if source.data_dir is None:
        if missing is None:
            return []
        raise XitError(missing)
    return search(Path(source.data_dir))


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


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSON Lines file, streamed (Mewsli-X's candidate set
    is a million lines); LF or CRLF, a UTF-8 BOM is ignored."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield i, json.loads(line)
                except json.JSONDecodeError as e:
                    raise XitError(f"{path}:{i}: invalid JSON line ({e.msg})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [r for _, r in iter_jsonl(path)]


def nli_rows(task: Task, path: Path, language: str | None = None) -> list[ClassificationRow]:
    """MNLI/XNLI rows from GLUE/XNLI TSV or MultiNLI jsonl (sentence1, sentence2, gold_label)."""
    records = read_jsonl(path) if path.suffix == ".jsonl" else read_tsv(path)
    if records and not {"sentence1", "sentence2", "gold_label"} <= records[0].keys():
        raise XitError(f"{path}: expected columns sentence1, sentence2, gold_label")
    return [
        {"text_a": r["sentence1"], "text_b": r["sentence2"], "label": task.labels.index(r["gold_label"]),
         # XNLI-1.0's files carry MNLI's genre of each pair (the Hub's copy does not): for evaluation slices.
         **({"genre": r["genre"]} if language is not None and r.get("genre") else {})}
        for r in records
        if r.get("gold_label") in task.labels and (language is None or r.get("language") == language)
    ]


def hf_pair_rows(ds: Iterable[dict[str, Any]], a: str, b: str, n_labels: int) -> list[ClassificationRow]:
    """Sentence-pair rows from a HF split; label ids outside [0, n) (-1 = unlabelled) are dropped."""
    return [
        {"text_a": r[a], "text_b": r[b], "label": int(r["label"])}
        for r in ds
        if 0 <= int(r["label"]) < n_labels
    ]


def squad_rows(path: Path) -> list[SpanQARow]:
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


def hf_squad_rows(ds: Iterable[dict[str, Any]]) -> list[SpanQARow]:
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


def id_sentences(path: Path) -> tuple[list[str], list[str]]:
    """BUCC-style `id<TAB>sentence` lines: (ids, sentences)."""
    ids, sents = [], []
    for i, line in enumerate(read_lines(path), 1):
        sid, sep, sent = line.partition("\t")
        if not sep:
            raise XitError(f"{path}:{i}: expected 'id<TAB>sentence'")
        ids.append(sid)
        sents.append(sent)
    return ids, sents


def parallel_rows(source_file: Path, target_file: Path) -> Rows:
    """Tatoeba-style line-aligned files (line i of source translates line i of target): one retrieval row."""
    source, target = read_lines(source_file), read_lines(target_file)
    if len(source) != len(target):
        raise XitError(f"{source_file} has {len(source)} lines but {target_file} has {len(target)}: not aligned")
    return [{"source": source, "target": target}]


def bucc_rows(source_file: Path, target_file: Path, gold_file: Path) -> Rows:
    """BUCC's `id<TAB>sentence` files and `src_id<TAB>tgt_id` gold: one retrieval row."""
    (source_ids, source), (target_ids, target) = id_sentences(source_file), id_sentences(target_file)
    known_s, known_t = set(source_ids), set(target_ids)
    gold = []
    for i, line in enumerate(read_lines(gold_file), 1):
        pair = line.split("\t")
        if len(pair) != 2 or pair[0] not in known_s or pair[1] not in known_t:
            raise XitError(f"{gold_file}:{i}: expected 'src_id<TAB>tgt_id' with ids from the sentence files")
        gold.append(pair)
    return [{"source_ids": source_ids, "source": source, "target_ids": target_ids, "target": target, "gold": gold}]
