"""The task registry: every task xit knows, with its format, languages, metric and loader.

A task is data, not code paths: `Task` names the format that owns featurisation, head,
decoding and metric (see `xit.formats`), and carries a `load` function that returns rows
for one (language, split) either from the production source (a `datasets` id/config) or,
when the spec points the task at local files, from those files in their original format.

Row schemas, one per format (plain dicts, the shape every loader returns): typed in `xit.formats.rows`
(``ClassificationRow``, ``SpanQARow``, ``MultipleChoiceRow``, ``TaggingRow``, ``MLMRow``, ``DualEncoderRow``: the
English query/relevant-candidate pairs that fine-tune a retrieval task's encoder, see `Task.dual_encoder`), and

* ``retrieval``: one row per language holding the whole evaluation set:
  ``{"source": [str, ...], "target": [str, ...]}`` for Tatoeba-style 1-NN (line i of
  source translates line i of target; source is the non-English side) and
  ``{"source_ids": [str], "source": [str], "target_ids": [str], "target": [str],
  "gold": [[src_id, tgt_id], ...]}`` for BUCC-style mining; for XTREME-R's language-agnostic retrieval
  (mAP@20) ``{"question_ids", "questions", "candidate_ids", "sentences", "contexts", "gold":
  [[question_id, candidate_id], ...]}`` (LAReQA: the pool is every language's candidates) and
  ``{"mention_ids", "mentions", "gold": [entity_id, ...], "candidate_ids", "candidates"}`` (Mewsli-X:
  one candidate set shared by all languages).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xit.errors import WorkError, XitError
from xit.files import sha256_file
from xit.formats import reports

# Names that end up in file names (predictions/<language>.jsonl), keys and plans carried to cluster pods: no
# '/', no '..', no spaces or control characters. Languages also take no '.' (a data_files key is "<lang>.<split>").
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
SAFE_LANGUAGE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


def check_name(value: object, what: str) -> str:
    """`value` if it is a safe name for `what` (a task, split or metric name), else a one-line XitError."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise XitError(f"{what} {value!r} is not a safe name (letters, digits, '_', '-', '.', '@'; "
                       "starting with a letter or digit; no '..'; at most 64 characters)")
    return value


def check_language(value: object, what: str = "language") -> str:
    if not isinstance(value, str) or not SAFE_LANGUAGE.fullmatch(value):
        raise XitError(f"{what} {value!r} is not a language code (letters, digits, '_' and '-', starting with a "
                       "letter, at most 32 characters)")
    return value


FORMATS = ("classification", "span_qa", "multiple_choice", "tagging", "retrieval", "dual_encoder", "mlm")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class DataSource:
    """Where a task's data comes from when not from its production `datasets` source.

    ``data_dir`` holds the files in the task's original distribution layout;
    ``data_files`` maps "<split>" or "<language>.<split>" to one file path.
    """

    data_dir: Path | None = None
    data_files: dict[str, Path] = field(default_factory=dict)

    def given(self, keys: tuple[str, ...]) -> Path | None:
        """The file ``data_files`` names under the first of `keys` it has (None: it names none of them)."""
        return next((Path(self.data_files[k]) for k in keys if k in self.data_files), None)

    def candidates(self, keys: tuple[str, ...], names: tuple[str, ...]) -> list[Path]:
        """Where a local file may be, best first: the file ``data_files`` names under the first of `keys` (alone:
        a file given by name overrides every default), else each default name under ``data_dir``; [] when
        neither is given. The one resolution every task family's local files go through."""
        given = self.given(keys)
        if given is not None:
            return [given]
        return [Path(self.data_dir) / n for n in names] if self.data_dir is not None else []


@dataclass(frozen=True)
class Slice:
    """A named part of a target's evaluation data, scored on its own (out-of-distribution analysis).

    ``kind`` "languages": the mean over those of the target's languages; "genre": the rows whose ``genre`` is one
    of ``values``, in every language (the loader must keep the genre; `needs_local` says the Hub copy lacks it).
    """

    kind: str  # "languages" | "genre"
    values: tuple[str, ...]
    note: str = ""
    needs_local: bool = False


# load(task, language, split, source) -> rows. `source` None means the production source.
Loader = Callable[["Task", str, str, DataSource | None], list[dict[str, Any]]]
# local_files(task, language, split, source) -> the files a local load would read.
LocalFiles = Callable[["Task", str, str, DataSource], list[Path]]
# labels_from(task, source) -> the label inventory, for tasks whose inventory is defined by their training data.
LabelsFrom = Callable[["Task", DataSource | None], tuple[str, ...]]


# Bump a format's version when its featurisation changes what a stage trains on or predicts from the same rows:
# the data fingerprint, so the stage keys, of every task of that format change.
FORMAT_VERSIONS = {
    "tagging": "2",  # 2: long sentences cut into segments between words (XTREME), not truncated
    "span_qa": "2",  # 2: questions cut to max_query_length tokens (XTREME's run_squad.py), not kept whole
}


@dataclass(frozen=True)
class Task:
    name: str
    format: str
    languages: tuple[str, ...]
    metric: str
    source: str
    family: str
    load_fn: Loader
    local_files_fn: LocalFiles | None = None
    labels: tuple[str, ...] = ()
    num_choices: int = 0
    retrieval: str | None = None  # "tatoeba" | "bucc" | "lareqa" | "mewslix" for format == "retrieval"
    train_language: str = "en"
    # Further languages with a training set of this task (translated, as XNLI's and PAWS-X's, or native, as
    # WikiANN's): `task@lang` trains on that language's train set and selects on its dev set (`in_language`).
    train_languages: tuple[str, ...] = ()
    eval_split: str = "test"
    # Named evaluation slices a spec may ask for (`slices: {task: [name, ...]}`).
    slices: dict[str, Slice] = field(default_factory=dict)
    roles: frozenset[str] = frozenset({"intermediate", "target"})
    defaults: dict[str, Any] = field(default_factory=dict)
    # Bump when the loader's output for the same files would change.
    data_version: str = "1"
    # Data that only ever comes from local files (custom tasks): always fingerprinted by content.
    local_data: bool = False
    # For a tagging task whose inventory is defined by its training data (CCG: the categories seen >= 10 times
    # in CCGbank 02-21): `labels` stays empty in the registry and `for_data(source)` fills it in.
    labels_from: LabelsFrom | None = None
    labels_note: str = ""
    # XTREME-R's recipe for a retrieval task whose baseline fine-tunes a dual encoder first (LAReQA on SQuAD
    # pairs, Mewsli-X on Wikipedia mention/entity pairs): the `load_fn`/`local_files_fn` pair (`make_io`) of
    # its English "train"/"dev" dual_encoder rows.
    finetune: dict[str, Any] | None = None
    finetune_source: str = ""
    finetune_defaults: dict[str, Any] = field(default_factory=dict)
    # A target fine-tuned on another registered task's English training data, shared with other targets (XQuAD
    # and MLQA both train on SQuAD v1.1, as XTREME's scripts/train.sh and jiant's TRAIN_TASK_DICT do): the plan
    # trains one model, with this task's head, for all of them when their hyper-parameters and data agree.
    train_task: str | None = None
    # No public source a job could download (CCGbank is licensed; Mewsli-X is rebuilt from dumps): a spec
    # using the task must point it at local files.
    local_only: bool = False
    # span_qa: questions may have no answer (SQuAD v2.0: empty `answers`): every window of such a row trains on
    # the first token, decoding predicts "" when the null score beats the best span, scoring is v2.0's.
    no_answer: bool = False
    # span_qa: how answers are normalised before EM/F1: "squad" (SQuAD v1.1's English rules) or "mlqa" (MLQA's
    # per-language rules; the rows carry their answer language under "language").
    answer_normalisation: str = "squad"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"task {self.name}: unknown format {self.format!r}")
        if self.answer_normalisation not in ("squad", "mlqa"):
            raise ValueError(f"task {self.name}: unknown answer normalisation {self.answer_normalisation!r}")

    def dual_encoder(self) -> Task:
        """The dual-encoder training task of a fine-tuned retrieval task: same name and data, English pairs."""
        if self.finetune is None:
            raise XitError(f"task {self.name!r} has no dual-encoder fine-tuning data")
        return dataclasses.replace(
            self, format="dual_encoder", metric="mrr", languages=("en",), retrieval=None, roles=frozenset(),
            source=self.finetune_source, defaults=dict(self.finetune_defaults), eval_split="dev",
            **self.finetune, finetune=None)

    @property
    def base_name(self) -> str:
        """The registered task a `task@lang` variant comes from (itself otherwise)."""
        return self.name.partition("@")[0]

    def intermediate_languages(self) -> tuple[str, ...]:
        """The languages this task can be an intermediate task in: its own training language first."""
        if "intermediate" not in self.roles:
            return ()
        return (self.train_language, *[lang for lang in self.train_languages if lang != self.train_language])

    def in_language(self, language: str) -> Task:
        """This task as an intermediate task trained on `language`'s train set (checkpoint on its dev set),
        named ``<task>@<language>``; the task itself for its own training language."""
        if language == self.train_language and "intermediate" in self.roles:
            return self
        langs = self.intermediate_languages()
        if language not in langs:
            has = f"it has: {', '.join(langs)}" if langs else "it is not an intermediate task"
            raise XitError(f"task {self.name!r} has no training data in language {language!r} ({has})")
        return dataclasses.replace(self, name=f"{self.name}@{language}", train_language=language,
                                   languages=(language,), train_languages=(), roles=frozenset({"intermediate"}),
                                   eval_split="dev")

    def for_data(self, source: DataSource | None) -> Task:
        """This task with its label inventory; the same task unless the inventory comes from the data."""
        if self.labels_from is None or self.labels:
            return self
        with during_work():  # the spec check that reads them first makes this bad input again (`xit.spec`)
            return dataclasses.replace(self, labels=self.labels_from(self, source))

    def load(self, language: str, split: str, source: DataSource | None = None) -> list[dict[str, Any]]:
        """The rows of (language, split). Only a running stage reads rows, so whatever goes wrong here (a file
        gone, unreadable or malformed since the spec was checked; a language the plan should not have asked
        for) is a failure during work: a `WorkError` (exit 1), never bad input."""
        with during_work():
            if language not in self.languages and language != self.train_language:
                raise XitError(
                    f"task {self.name!r} has no language {language!r}; "
                    f"it has: {', '.join(self.languages)}"
                )
            task = self.for_data(source)
            return task.load_fn(task, language, split, source)

    def local_files(self, language: str, split: str, source: DataSource | None) -> list[Path]:
        if self.local_files_fn is None:
            raise XitError(f"task {self.name!r} cannot be loaded from local files")
        return self.local_files_fn(self, language, split, source)

    def data_fingerprint(self, pairs: list[tuple[str, str]], source: DataSource | None) -> str:
        """A hash of what the (language, split) data *is*: local file contents, or the production source id."""
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.data_version}|{self.source}".encode())
        if self.format in FORMAT_VERSIONS:  # what is trained on and predicted from the same rows changed
            h.update(f"|format {FORMAT_VERSIONS[self.format]}".encode())
        if source is not None or self.local_data:
            for lang, split in sorted(pairs):
                for p in self.local_files(lang, split, source):
                    h.update(f"{lang}|{split}|{p.name}|{file_sha256(p)}".encode())
        return h.hexdigest()[:24]


@contextlib.contextmanager
def during_work() -> Iterator[None]:
    """A `XitError` raised inside as the `WorkError` it is: data read while work runs."""
    try:
        yield
    except WorkError:
        raise
    except XitError as e:
        raise WorkError(str(e)) from None


_FILE_HASHES: dict[tuple[str, float, int], str] = {}


def file_identity(p: Path) -> tuple[str, float, int]:
    """(resolved path, mtime, size): the key of the caches of what is read or derived from a local file."""
    st = p.stat()
    return str(p.resolve()), st.st_mtime, st.st_size


def file_sha256(p: Path) -> str:
    k = file_identity(p)
    if k not in _FILE_HASHES:
        _FILE_HASHES[k] = sha256_file(p)
    return _FILE_HASHES[k]


_REGISTRY: dict[str, Task] = {}

# Names a spec may use in `targets` for a whole benchmark: the nine XTREME tasks (Hu et al., 2020) and the ten
# XTREME-R tasks (Ruder et al., 2021: no PAWS-X, no BUCC; XCOPA, Mewsli-X and LAReQA added; UD-POS, WikiANN-NER
# and Tatoeba on XTREME-R's larger language sets).
TARGET_GROUPS: dict[str, tuple[str, ...]] = {
    "xtreme": ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"),
    "xtreme-r": ("xnli", "xcopa", "udpos-r", "panx-r", "xquad", "mlqa", "tydiqa", "tatoeba-r", "mewslix", "lareqa"),
}
# Groups that also restrict their tasks to some languages: every task of XTREME and XTREME-R that has at least
# one of the languages, evaluated in those it has (`group_tasks`).
LANGUAGE_GROUPS: dict[str, tuple[str, ...]] = {"fi-hu": ("fi", "hu")}


def group_tasks(group: str) -> dict[str, tuple[str, ...] | None]:
    """task -> the languages a target group evaluates it in (None: all of its languages)."""
    if group in TARGET_GROUPS:
        return dict.fromkeys(TARGET_GROUPS[group])
    want = LANGUAGE_GROUPS[group]
    out: dict[str, tuple[str, ...] | None] = {}
    for name in dict.fromkeys(TARGET_GROUPS["xtreme"] + TARGET_GROUPS["xtreme-r"]):
        langs = tuple(lang for lang in want if lang in get_task(name).languages)
        if langs:
            out[name] = langs
    return out


def register(task: Task) -> Task:
    """Add a task; every name of it that becomes a path or a key is checked to be safe first."""
    check_name(task.name, "task name")
    for lang in (*task.languages, task.train_language):
        check_language(lang, f"task {task.name!r}: language")
    check_name(task.eval_split, f"task {task.name!r}: split")
    check_name(task.metric, f"task {task.name!r}: metric")
    scored = reports(task.format, task.retrieval)
    if task.metric not in scored.metrics:
        raise ValueError(f"task {task.name!r}: metric {task.metric!r} is not reported by its format "
                         f"(it reports: {', '.join(scored.metrics)})")
    if task.name in _REGISTRY:
        raise ValueError(f"task {task.name!r} registered twice")
    _REGISTRY[task.name] = task
    return task


_LOADED = False


def _ensure_loaded() -> None:
    # Registration happens on import of the family modules (once: a plan asks for tasks ~20,000 times).
    global _LOADED
    if _LOADED:
        return
    from xit.tasks import demo, english, mlm, native, xtreme, xtreme_r  # noqa: F401

    _LOADED = True


def all_tasks() -> list[Task]:
    _ensure_loaded()
    return sorted(_REGISTRY.values(), key=lambda t: (t.family, t.name))


def get_task(name: str) -> Task:
    """A registered task by name; ``<task>@<language>`` is that task trained in another of its languages."""
    _ensure_loaded()
    base, at, language = name.partition("@")
    if at:
        if not language:
            raise XitError(f"task {name!r}: give a language after '@' (e.g. xnli@de)")
        return get_task(base).in_language(language)
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise XitError(f"unknown task {name!r}{hint}; known tasks: {', '.join(known)}")
