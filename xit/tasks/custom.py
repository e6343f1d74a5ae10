"""Tasks without code: a small YAML descriptor names a format, languages, metric and local files.

A descriptor (one task per ``*.yaml`` file)::

    name: my-nli                      # lowercase letters, digits, '-'
    format: classification            # classification | span_qa | multiple_choice | tagging | retrieval
    languages: [en, de, fr]
    metric: accuracy                  # a metric the format reports (default: the format's usual headline)
    labels: [entailment, neutral, contradiction]   # classification / tagging (required there)
    num_choices: 4                    # multiple_choice (required there)
    retrieval: tatoeba                # retrieval only: tatoeba | bucc
    roles: [intermediate, target]     # default both (retrieval: target only)
    eval_split: test
    files: "{lang}/{split}.tsv"       # pattern, or {"<lang>.<split>" | "<split>": path}, or for retrieval
                                      # {source: ..., target: ..., gold: ...} (gold for bucc only)
    file_format: tsv                  # tsv | jsonl | json (SQuAD) | conll | text_pair | bucc
    columns: {text_a: premise, text_b: hypothesis, label: label}
    defaults: {lr: 2.0e-5, epochs: 3}

Paths are relative to the descriptor's directory (or to ``data_dir``, itself relative to it). A spec's
`DataSource` overrides them: ``data_files`` first ("<lang>.<split>" / "<split>", for retrieval also
"<lang>.<split>.<role>" / "<split>.<role>"), then ``data_dir`` joined with the descriptor's relative path.
Loading never touches the network: the "production source" of a custom task is its own local files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xit.errors import XitError
from xit.formats import reports
from xit.tasks import registry
from xit.tasks.loading import bucc_rows, make_io, parallel_rows, read_jsonl, read_lines, read_tsv, squad_rows
from xit.tasks.registry import FORMATS, SAFE_LANGUAGE, SPLITS, DataSource, Task, register

# A descriptor may name every format but dual_encoder, which is only a retrieval task's fine-tuning.
DESCRIPTOR_FORMATS = tuple(f for f in FORMATS if f != "dual_encoder")

Rows = list[dict[str, Any]]

FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "classification": ("tsv", "jsonl"),
    "multiple_choice": ("jsonl", "tsv"),
    "tagging": ("conll", "jsonl"),
    "span_qa": ("json", "jsonl"),
    "tatoeba": ("text_pair",),
    "bucc": ("bucc",),
}
# xit's row fields a descriptor's `columns` may map, per format (conll columns are 0-based indices).
COLUMN_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text_a", "text_b", "label"),
    "multiple_choice": ("context", "question", "choices", "label"),
    "tagging": ("tokens", "tags", "token", "tag"),
    "span_qa": ("id", "context", "question", "answers"),
    "retrieval": (),
}
RETRIEVAL_ROLES = {"tatoeba": ("source", "target"), "bucc": ("source", "target", "gold")}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class TaskDescriptor(BaseModel):
    """A custom task's YAML descriptor (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    format: str
    languages: list[str] = Field(min_length=1)
    metric: str | None = None
    labels: list[str] = Field(default_factory=list)
    num_choices: int | None = Field(default=None, ge=2)
    retrieval: Literal["tatoeba", "bucc"] | None = None
    roles: list[Literal["intermediate", "target"]] | None = None
    eval_split: Literal["train", "dev", "test"] = "test"
    train_language: str = "en"
    splits: list[Literal["train", "dev", "test"]] | None = None
    data_dir: str | None = None
    files: str | dict[str, str]
    file_format: str | None = None
    columns: dict[str, str | int] = Field(default_factory=dict)
    choice_columns: list[str] = Field(default_factory=list)
    defaults: dict[str, float | int | bool | str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v) or len(v) > 64:
            raise ValueError(f"{v!r} must be lowercase letters, digits and '-' (starting with a letter or digit)")
        return v

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str]) -> list[str]:
        for lang in v:
            if not SAFE_LANGUAGE.fullmatch(lang):  # it becomes a file name: predictions/<lang>.jsonl
                raise ValueError(f"language {lang!r} is not a language code (letters, digits, '_' and '-', "
                                 "starting with a letter, at most 32 characters)")
        if len(set(v)) != len(v):
            raise ValueError("lists a language twice")
        return v

    @field_validator("train_language")
    @classmethod
    def _train_language(cls, v: str) -> str:
        if not SAFE_LANGUAGE.fullmatch(v):
            raise ValueError(f"{v!r} is not a language code (letters, digits, '_' and '-', starting with a letter)")
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in DESCRIPTOR_FORMATS:
            raise ValueError(f"unknown format {v!r}; known: {', '.join(DESCRIPTOR_FORMATS)}")
        return v

    @field_validator("defaults")
    @classmethod
    def _defaults(cls, v: dict[str, Any]) -> dict[str, Any]:
        # YAML 1.1 reads "2e-5" as a string: numbers written that way become floats.
        out = {}
        for k, x in v.items():
            if isinstance(x, str):
                try:
                    x = float(x)
                except ValueError:
                    pass
            out[k] = x
        return out

    @model_validator(mode="after")
    def _consistent(self) -> TaskDescriptor:
        fmt = self.format
        if fmt == "retrieval":
            if self.retrieval is None:
                raise ValueError("field 'retrieval': required for format retrieval (tatoeba | bucc)")
            kind = self.retrieval
        else:
            if self.retrieval is not None:
                raise ValueError(f"field 'retrieval': only for format retrieval, not {fmt}")
            kind = fmt
        scored = reports(fmt, self.retrieval)
        metrics = scored.metrics
        if self.metric is None:
            self.metric = scored.default
        if self.metric not in metrics:
            raise ValueError(f"field 'metric': {self.metric!r} is not reported by format {kind} "
                             f"(it reports: {', '.join(metrics)})")
        if fmt in ("classification", "tagging"):
            if not self.labels:
                raise ValueError(f"field 'labels': required for format {fmt}")
            if len(set(self.labels)) != len(self.labels):
                raise ValueError("field 'labels': labels must be distinct")
        if fmt == "multiple_choice" and self.num_choices is None:
            raise ValueError("field 'num_choices': required for format multiple_choice")
        if fmt != "multiple_choice" and self.num_choices is not None:
            raise ValueError(f"field 'num_choices': only for format multiple_choice, not {fmt}")
        if fmt == "multiple_choice" and self.choice_columns and len(self.choice_columns) != self.num_choices:
            raise ValueError(f"field 'choice_columns': {len(self.choice_columns)} columns but "
                             f"num_choices is {self.num_choices}")
        if self.roles is None:
            self.roles = ["target"] if fmt == "retrieval" else ["intermediate", "target"]
        if not self.roles:
            raise ValueError("field 'roles': at least one of intermediate, target")
        if fmt == "retrieval" and "intermediate" in self.roles:
            raise ValueError("field 'roles': a retrieval task has no head to train: it can only be a target")
        if self.file_format is None:
            self.file_format = FILE_FORMATS[kind][0]
        if self.file_format not in FILE_FORMATS[kind]:
            raise ValueError(f"field 'file_format': {self.file_format!r} does not fit format {kind} "
                             f"(use: {', '.join(FILE_FORMATS[kind])})")
        allowed = COLUMN_FIELDS[fmt]
        for k in self.columns:
            if k not in allowed:
                raise ValueError(f"field 'columns': unknown row field {k!r} for format {fmt} "
                                 f"(known: {', '.join(allowed) or 'none'})")
        if self.choice_columns and fmt != "multiple_choice":
            raise ValueError(f"field 'choice_columns': only for format multiple_choice, not {fmt}")
        if fmt == "retrieval":
            roles = RETRIEVAL_ROLES[kind]
            if not isinstance(self.files, dict) or set(self.files) != set(roles):
                raise ValueError(f"field 'files': retrieval {kind} needs a mapping with keys {', '.join(roles)}")
            if self.splits is None:
                self.splits = ["dev", "test"] if kind == "bucc" else [self.eval_split]
        elif isinstance(self.files, dict):
            for k in self.files:
                parts = k.split(".")
                if parts[-1] not in SPLITS or len(parts) > 2 or (len(parts) == 2 and parts[0] not in self.languages
                                                                  and parts[0] != self.train_language):
                    raise ValueError(f"field 'files': key {k!r} must be '<split>' or '<lang>.<split>' with a split "
                                     f"in {', '.join(SPLITS)} and a language of the task")
        if self.splits is not None and self.eval_split not in self.splits:
            raise ValueError(f"field 'eval_split': {self.eval_split!r} is not in splits ({', '.join(self.splits)})")
        return self


def _one_line(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"field {loc!r}: {msg}" if loc else msg)
    return "; ".join(parts).replace("\n", " ")


def parse_descriptor(data: Any, where: str) -> TaskDescriptor:
    """Validate a descriptor mapping; errors become one-line XitErrors starting with `where`."""
    if not isinstance(data, dict):
        raise XitError(f"{where}: a task descriptor must be a YAML mapping, not {type(data).__name__}")
    try:
        return TaskDescriptor.model_validate(data)
    except ValidationError as e:
        raise XitError(f"{where}: {_one_line(e)}") from None


def load_descriptor(path: Path) -> TaskDescriptor:
    from xit.inputs import parse_yaml, read_text

    path = Path(path)
    data = parse_yaml(read_text(path, "task descriptor"), path)
    try:
        return parse_descriptor(data, str(path))
    except RecursionError:
        raise XitError(f"{path}: nested too deeply to be a task descriptor") from None


# --------------------------------------------------------------------------- files


def _base(d: TaskDescriptor, base_dir: Path) -> Path:
    return Path(base_dir) / d.data_dir if d.data_dir else Path(base_dir)


def _rel(pattern: str, language: str, split: str) -> str:
    return pattern.replace("{lang}", language).replace("{split}", split)


def _split_map(d: TaskDescriptor) -> Callable[[str], tuple[str, ...]]:
    if d.splits is not None:
        fixed = tuple(d.splits)
        return lambda lang: fixed
    if isinstance(d.files, dict):
        files = d.files
        return lambda lang: tuple(s for s in SPLITS if s in files or f"{lang}.{s}" in files)
    return lambda lang: SPLITS


def _relative_names(d: TaskDescriptor, language: str, split: str) -> list[tuple[str | None, str]]:
    """(role, path relative to the base directory) of each file a (language, split) reads."""
    if d.format == "retrieval":
        assert isinstance(d.files, dict)
        return [(role, _rel(d.files[role], language, split)) for role in RETRIEVAL_ROLES[d.retrieval or "tatoeba"]]
    if isinstance(d.files, str):
        return [(None, _rel(d.files, language, split))]
    for k in (f"{language}.{split}", split):
        if k in d.files:
            return [(None, _rel(d.files[k], language, split))]
    raise XitError(f"custom task {d.name!r}: field 'files' names no file for {language}/{split}")


def _files_fn(d: TaskDescriptor, base_dir: Path) -> Callable[[Task, str, str, DataSource | None], list[Path]]:
    def files(task: Task, language: str, split: str, source: DataSource | None) -> list[Path]:
        out = []
        for role, rel in _relative_names(d, language, split):
            path: Path | None = None
            if source is not None:
                keys = [f"{language}.{split}.{role}", f"{split}.{role}"] if role else [f"{language}.{split}", split]
                if role == "source":
                    keys += [f"{language}.{split}", split]
                path = next(iter(source.candidates(tuple(keys), (rel,))), None)
                if path is None:
                    raise XitError(f"task {task.name!r}: no local file for {language}/{split}"
                                   f"{' ' + role if role else ''}: set data_files "
                                   f"'{keys[0]}' or data_dir")
            else:
                path = _base(d, base_dir) / rel
            if not path.is_file():
                raise XitError(f"task {task.name!r} ({language}/{split}): missing local data file {path}")
            out.append(path)
        return out

    return files


# --------------------------------------------------------------------------- parsing


def _records(d: TaskDescriptor, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) for each record of a TSV / JSONL file; `where` is 'file:line' for messages."""
    if d.file_format == "tsv":
        return [(f"{path}:{i + 2}", r) for i, r in enumerate(read_tsv(path))]
    return [(f"{path}:record {i + 1}", r) for i, r in enumerate(read_jsonl(path))]


def _get(d: TaskDescriptor, rec: dict[str, Any], fld: str, where: str, required: bool = True) -> Any:
    col = str(d.columns.get(fld, fld))
    if col not in rec:
        if not required:  # optional fields (text_b, question, id) may be absent from a record
            return None
        raise XitError(f"{where}: no column {col!r} (row field {fld!r}, see the descriptor's 'columns')")
    return rec[col]


def _label(d: TaskDescriptor, value: Any, n: int, where: str) -> int:
    if isinstance(value, str) and value in d.labels:
        return d.labels.index(value)
    try:
        i = int(value)
    except (TypeError, ValueError):
        known = f" (labels: {', '.join(d.labels)})" if d.labels else ""
        raise XitError(f"{where}: label {value!r} is neither a known label nor an integer{known}") from None
    if isinstance(value, bool) or not 0 <= i < n:
        raise XitError(f"{where}: label {value!r} out of range 0..{n - 1}")
    return i


def _classification(d: TaskDescriptor, path: Path) -> Rows:
    rows = []
    for where, r in _records(d, path):
        b = _get(d, r, "text_b", where, required=False)
        rows.append({"text_a": str(_get(d, r, "text_a", where)), "text_b": None if b is None else str(b),
                     "label": _label(d, _get(d, r, "label", where), len(d.labels), where)})
    return rows


def _multiple_choice(d: TaskDescriptor, path: Path) -> Rows:
    n = d.num_choices or 0
    rows = []
    for where, r in _records(d, path):
        if d.choice_columns:
            choices = []
            for c in d.choice_columns:
                if c not in r:
                    raise XitError(f"{where}: no column {c!r} (from the descriptor's 'choice_columns')")
                choices.append(r[c])
        else:
            choices = _get(d, r, "choices", where)
            if isinstance(choices, str):
                try:
                    choices = json.loads(choices)
                except json.JSONDecodeError:
                    choices = None
            if not isinstance(choices, list):
                raise XitError(f"{where}: 'choices' must be a list (or use the descriptor's 'choice_columns')")
        if not 2 <= len(choices) <= n:
            raise XitError(f"{where}: {len(choices)} choices, expected 2..{n} (num_choices)")
        q = _get(d, r, "question", where, required=False)
        rows.append({"context": str(_get(d, r, "context", where)), "question": "" if q is None else str(q),
                     "choices": [str(c) for c in choices],
                     "label": _label(d, _get(d, r, "label", where), len(choices), where)})
    return rows


def _check_tags(d: TaskDescriptor, tags: list[str], where: str) -> None:
    for t in tags:
        if t not in d.labels:
            raise XitError(f"{where}: tag {t!r} is not in the descriptor's labels ({', '.join(d.labels)})")


def _tagging(d: TaskDescriptor, path: Path) -> Rows:
    rows: Rows = []
    if d.file_format == "jsonl":
        for where, r in _records(d, path):
            tokens, tags = _get(d, r, "tokens", where), _get(d, r, "tags", where)
            if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags):
                raise XitError(f"{where}: 'tokens' and 'tags' must be lists of equal length")
            _check_tags(d, [str(t) for t in tags], where)
            rows.append({"tokens": [str(t) for t in tokens], "tags": [str(t) for t in tags]})
        return rows
    ti, gi = d.columns.get("token", 0), d.columns.get("tag", -1)
    if not isinstance(ti, int) or not isinstance(gi, int):
        raise XitError(f"{path}: conll columns 'token' and 'tag' must be 0-based column indices")
    tokens: list[str] = []
    tags: list[str] = []
    start = 1
    for i, line in enumerate([*read_lines(path), ""], 1):
        if not line.strip():
            if tokens:
                _check_tags(d, tags, f"{path}:{start}")
                rows.append({"tokens": tokens, "tags": tags})
            tokens, tags, start = [], [], i + 1
            continue
        if line.startswith("-DOCSTART-"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            tokens.append(fields[ti])
            tags.append(fields[gi])
        except IndexError:
            raise XitError(f"{path}:{i}: expected 'token<TAB>tag'") from None
        if len(fields) < 2:
            raise XitError(f"{path}:{i}: expected 'token<TAB>tag'")
    return rows


def _answers(value: Any, where: str) -> dict[str, list[Any]]:
    if isinstance(value, dict) and "text" in value and "answer_start" in value:
        text, start = value["text"], value["answer_start"]
        if isinstance(text, str):
            text, start = [text], [start]
        return {"text": [str(t) for t in text], "answer_start": [int(s) for s in start]}
    if isinstance(value, list) and all(isinstance(a, dict) and {"text", "answer_start"} <= a.keys() for a in value):
        return {"text": [str(a["text"]) for a in value], "answer_start": [int(a["answer_start"]) for a in value]}
    raise XitError(f"{where}: 'answers' must be {{text: [...], answer_start: [...]}} or a list of such objects")


def _span_qa(d: TaskDescriptor, path: Path) -> Rows:
    if d.file_format == "json":
        rows = squad_rows(path)
    else:
        rows = []
        for i, (where, r) in enumerate(_records(d, path)):
            rid = _get(d, r, "id", where, required=False)
            rows.append({"id": str(rid) if rid is not None else f"{path.stem}-{i}",
                         "context": str(_get(d, r, "context", where)), "question": str(_get(d, r, "question", where)),
                         "answers": _answers(_get(d, r, "answers", where), where)})
    for r in rows:
        if not r["answers"]["text"]:
            raise XitError(f"{path}: question {r['id']!r} has no answer")
        for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True):
            if r["context"][s : s + len(t)] != t:
                raise XitError(f"{path}: question {r['id']!r}: answer {t!r} is not at offset {s} of its context")
    return rows


def _retrieval(d: TaskDescriptor, files: list[Path]) -> Rows:
    if d.retrieval == "tatoeba":
        return parallel_rows(files[0], files[1])
    return bucc_rows(files[0], files[1], files[2])


def _parse_fn(d: TaskDescriptor) -> Callable[[Task, str, str, list[Path]], Rows]:
    def parse(task: Task, language: str, split: str, files: list[Path]) -> Rows:
        if d.format == "retrieval":
            return _retrieval(d, files)
        reader = {"classification": _classification, "multiple_choice": _multiple_choice,
                  "tagging": _tagging, "span_qa": _span_qa}[d.format]
        return reader(d, files[0])

    return parse


# --------------------------------------------------------------------------- tasks and registration


def task_from_descriptor(d: TaskDescriptor, base_dir: Path, descriptor_file: Path | None) -> Task:
    """The Task a descriptor describes; its files resolve against `base_dir` (or a spec's DataSource)."""
    base_dir = Path(base_dir)
    files = _files_fn(d, base_dir)
    parse = _parse_fn(d)

    def own_files(task: Task, language: str, split: str) -> Rows:
        return parse(task, language, split, files(task, language, split, None))

    io = make_io(_split_map(d), files, parse, own_files)
    where = descriptor_file if descriptor_file is not None else base_dir
    return Task(
        name=d.name, format=d.format, languages=tuple(d.languages), metric=str(d.metric),
        source=f"custom task {where}", family="custom", load_fn=io["load_fn"],
        local_files_fn=io["local_files_fn"], labels=tuple(d.labels), num_choices=d.num_choices or 0,
        retrieval=d.retrieval, train_language=d.train_language, eval_split=d.eval_split,
        roles=frozenset(d.roles or ()), defaults=dict(d.defaults), local_data=True,
        # The descriptor decides what the rows are: its content is part of the data's identity.
        data_version=hashlib.sha256(json.dumps(d.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16],
    )


# name -> (descriptor as JSON-able dict, resolved base_dir, descriptor file or None)
_CUSTOM: dict[str, tuple[dict[str, Any], Path, Path | None]] = {}


def _register(d: TaskDescriptor, base_dir: Path, descriptor_file: Path | None) -> Task:
    registry._ensure_loaded()
    base_dir = Path(base_dir).resolve()
    dump = d.model_dump(mode="json")
    here = descriptor_file or base_dir
    if d.name in _CUSTOM:
        old_dump, old_base, old_file = _CUSTOM[d.name]
        if old_dump == dump and old_base == base_dir:
            return registry._REGISTRY[d.name]
        raise XitError(f"custom task {d.name!r} from {here} differs from the one already registered "
                       f"from {old_file or old_base}")
    if d.name in registry._REGISTRY:
        other = registry._REGISTRY[d.name]
        raise XitError(f"custom task {d.name!r} from {here} clashes with the built-in {other.family} task "
                       f"{other.name!r} ({other.source})")
    task = register(task_from_descriptor(d, base_dir, descriptor_file))
    _CUSTOM[d.name] = (dump, base_dir, descriptor_file)
    return task


def load_task_file(path: Path) -> Task:
    """Read a descriptor and register its task (idempotent for an identical descriptor)."""
    path = Path(path).resolve()
    return _register(load_descriptor(path), path.parent, path)


def load_task_dir(directory: Path) -> list[Task]:
    """Register every ``*.yaml`` / ``*.yml`` descriptor in a directory (sorted by file name)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise XitError(f"{directory}: not a directory of task descriptors")
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return [load_task_file(p) for p in paths]


def descriptor_dict(task_name: str) -> dict[str, Any] | None:
    """A registered custom task's descriptor as a JSON-able dict plus ``base_dir`` (None for other tasks)."""
    if task_name not in _CUSTOM:
        return None
    dump, base, file = _CUSTOM[task_name]
    out = json.loads(json.dumps(dump))
    out["base_dir"] = str(base)
    if file is not None:
        out["descriptor_file"] = str(file)
    return out


def register_descriptor_dict(d: dict[str, Any]) -> Task:
    """Register a task from `descriptor_dict`'s output (e.g. embedded in a plan); idempotent."""
    if not isinstance(d, dict):
        raise XitError(f"custom task descriptor must be a mapping, not {type(d).__name__}")
    data = dict(d)
    base = data.pop("base_dir", None)
    file = data.pop("descriptor_file", None)
    where = f"custom task {data.get('name', '?')!r} ({file or base or 'embedded descriptor'})"
    if base is None:
        raise XitError(f"{where}: field 'base_dir' is missing")
    return _register(parse_descriptor(data, where), Path(base), Path(file) if file else None)
