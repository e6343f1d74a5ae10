"""Multilingual masked-language modelling as an intermediate task (format ``mlm``: raw text, masked seeded).

X-STILTs' other ingredient (Phang et al. 2020): MLM on Wikipedia text in many languages, trained alongside the
English intermediate tasks, so ``[anli-plus, …, hellaswag, mlm]`` is one spec entry. The task has one training
"language", ``multi``: its rows are every language's rows, interleaved one paragraph of each language in turn
(so ``max_train_examples`` keeps the languages balanced).

Sources:

* production — ``wikimedia/wikipedia`` config ``20231101.<lang>`` (split ``train``), streamed: per language the
  first ``WIKI_TRAIN_ARTICLES`` articles are training text and the next ``WIKI_DEV_ARTICLES`` dev text; each
  non-empty line (a paragraph) is a row. Languages: XTREME's 40 (PAN-X's).
* local — plain UTF-8 text files, one paragraph or sentence a line (blank lines ignored): ``data_dir`` holding
  ``<lang>.train.txt`` and ``<lang>.dev.txt`` (or ``<lang>/train.txt``, ``<lang>/dev.txt``), or ``data_files``
  ``<lang>.train`` / ``<lang>.dev``. The languages are those of the task's with a training file there; each
  needs its dev file too.

`make_mlm_task` registers another raw-text MLM task (other languages, another corpus); the masking lives in
`xit.formats.mlm`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.formats.rows import MLMRow
from xit.tasks.loading import Rows, local_root
from xit.tasks.registry import DataSource, Task, register
from xit.tasks.xtreme import PANX_LANGS

MULTI = "multi"
WIKIPEDIA = "wikimedia/wikipedia"
WIKIPEDIA_DUMP = "20231101"
WIKI_TRAIN_ARTICLES = 2000
WIKI_DEV_ARTICLES = 20
MLM_DEFAULTS = {"lr": 1e-5, "epochs": 1, "batch_size": 32, "max_length": 256, "warmup_ratio": 0.1,
                "max_dev_examples": 500}


def text_rows(lines: Iterable[str], language: str) -> list[MLMRow]:
    return [{"text": t, "language": language} for line in lines if (t := line.strip())]


def interleave(per_language: list[Rows]) -> Rows:
    """One row of each language in turn, until every language is used up."""
    return [r for group in itertools.zip_longest(*per_language) for r in group if r is not None]


def _candidates(lang: str, split: str) -> tuple[str, ...]:
    return (f"{lang}.{split}.txt", f"{lang}/{split}.txt")


def _language_file(task: Task, source: DataSource, lang: str, split: str) -> Path | None:
    """The file data_files names "<lang>.<split>" (no "<split>" alone: it would name one file for every language;
    not checked here: the spec check names it when missing), else the first default name present under data_dir;
    None when the language has none."""
    found = local_root(task, source, (f"{lang}.{split}",),
                       lambda root: [p for n in _candidates(lang, split) if (p := root / n).is_file()][:1],
                       missing=None, check=False)
    return found[0] if found else None


def _local_files(task: Task, language: str, split: str, source: DataSource) -> list[Path]:
    _check(task, language, split)
    langs = task.languages if language == MULTI else (language,)
    found = {lang: _language_file(task, source, lang, "train") for lang in langs}
    present = [lang for lang, p in found.items() if p is not None]
    if not present:
        where = source.data_dir or ", ".join(str(v) for v in source.data_files.values()) or "(nothing given)"
        raise XitError(f"task {task.name!r}: no local text file for any of its languages in {where} (expected "
                       f"<lang>.train.txt and <lang>.dev.txt, or data_files '<lang>.train' / '<lang>.dev')")
    files = []
    for lang in present:
        p = found[lang] if split == "train" else _language_file(task, source, lang, split)
        if p is None:
            raise XitError(f"task {task.name!r} ({lang}/{split}): missing local text file "
                           f"{Path(source.data_dir or '.') / _candidates(lang, split)[0]}")
        files.append(p)
    return files


def _check(task: Task, language: str, split: str) -> None:
    if language != MULTI and language not in task.languages:
        raise XitError(f"task {task.name!r} has no language {language!r}; it has: {MULTI}, "
                       f"{', '.join(task.languages)}")
    if split not in ("train", "dev"):
        raise XitError(f"task {task.name!r} has no split {split!r}; it has: train, dev")


def make_mlm_task(name: str, languages: tuple[str, ...], *, family: str, source: str,
                  hub: Callable[[str, str], Rows] | None, **kw: Any) -> Task:
    """Register an MLM task over `languages`: `hub(language, split)` is its production source (None: local text
    files only); local text files follow this module's layout."""

    def load(task: Task, language: str, split: str, src: DataSource | None) -> Rows:
        _check(task, language, split)
        if src is None:
            if hub is None:
                raise XitError(f"task {task.name!r} has no public source; give its local text files under data:")
            langs = task.languages if language == MULTI else (language,)
            return interleave([hub(lang, split) for lang in langs])
        files = _local_files(task, language, split, src)
        return interleave([text_rows(f.read_text(encoding="utf-8-sig").splitlines(), _language_of(task, f, src))
                           for f in files])

    return register(Task(name=name, format="mlm", languages=tuple(languages), metric="accuracy", source=source,
                         family=family, load_fn=load, local_files_fn=_local_files, train_language=MULTI,
                         eval_split="dev", roles=frozenset({"intermediate"}), local_only=hub is None,
                         defaults={**MLM_DEFAULTS, **kw.pop("defaults", {})}, **kw))


def _language_of(task: Task, path: Path, source: DataSource) -> str:
    for lang in task.languages:
        for split in ("train", "dev"):
            if _language_file(task, source, lang, split) == path:
                return lang
    return MULTI  # pragma: no cover - every file comes from _language_file


def wikipedia_rows(language: str, split: str) -> Rows:
    """The paragraphs of `language`'s Wikipedia articles: the first WIKI_TRAIN_ARTICLES for train, the next
    WIKI_DEV_ARTICLES for dev (streamed: nothing else is downloaded)."""
    import datasets

    ds = datasets.load_dataset(WIKIPEDIA, f"{WIKIPEDIA_DUMP}.{language}", split="train", streaming=True)
    start, n = (0, WIKI_TRAIN_ARTICLES) if split == "train" else (WIKI_TRAIN_ARTICLES, WIKI_DEV_ARTICLES)
    return text_rows((line for a in itertools.islice(ds, start, start + n) for line in a["text"].splitlines()),
                     language)


make_mlm_task(
    "mlm", tuple(PANX_LANGS), family="mlm",
    source=f"{WIKIPEDIA}:{WIKIPEDIA_DUMP}.<lang> (first {WIKI_TRAIN_ARTICLES} articles train, next "
           f"{WIKI_DEV_ARTICLES} dev, per language); local <lang>.{{train,dev}}.txt",
    hub=wikipedia_rows,
)
