"""The experiment spec: YAML → validated pydantic model, checked before anything starts.

A spec says what to run (see README "Spec format"). `load_spec` raises `XitError` with
one line naming the file and the field, task, language or path at fault — invalid YAML,
an unknown key, an unknown task (with the closest name), a language a task does not
have, a missing local data file, a missing model path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xit.errors import XitError
from xit.model_ids import TINY_MODEL, check_layer, is_local_path, model_depth
from xit.recipes import recipe_hparams, recipe_retrieval
from xit.tasks.registry import LANGUAGE_GROUPS, TARGET_GROUPS, DataSource, Task, get_task, group_tasks

# Defaults for every task; a task's registry entry overrides them, the spec overrides both.
GLOBAL_HPARAMS: dict[str, Any] = {
    "lr": 2e-5,
    "epochs": 3,
    "batch_size": 32,
    "max_length": 128,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "doc_stride": 128,
    "max_answer_length": 30,
    "n_best": 20,
    "eval_batch_size": 64,
    "max_train_examples": None,
    "max_dev_examples": 2000,
    "max_eval_examples": None,
    "evals_per_epoch": 1,
    "precision": "no",
}
# Only evaluation reads these: changing them must not retrain anything.
EVAL_ONLY_HPARAMS = ("max_eval_examples",)
# What evaluation depends on (the rest only shapes training).
EVAL_HPARAMS = ("max_length", "doc_stride", "max_answer_length", "n_best", "eval_batch_size",
                "max_eval_examples", "max_query_length", "null_score_diff_threshold")  # the last two: where set


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HParams(_Strict):
    """Any subset of the hyper-parameters; unset fields fall back to the next level."""

    lr: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0, le=1000)
    batch_size: int | None = Field(None, ge=1, le=1 << 16)
    max_length: int | None = Field(None, ge=8, le=1 << 16)
    max_query_length: int | None = Field(None, ge=8, description="span QA: question tokens kept (default 64, "
                                                     "XTREME's run_squad.py); dual encoders: query tokens "
                                                     "(candidates: max_length)")
    warmup_ratio: float | None = Field(None, ge=0, le=1)
    weight_decay: float | None = Field(None, ge=0)
    max_grad_norm: float | None = Field(None, gt=0)
    doc_stride: int | None = Field(None, ge=1)
    max_answer_length: int | None = Field(None, ge=1)
    n_best: int | None = Field(None, ge=1)
    eval_batch_size: int | None = Field(None, ge=1, le=1 << 16)
    max_train_examples: int | None = Field(None, ge=1)
    max_dev_examples: int | None = Field(None, ge=1)
    max_eval_examples: int | None = Field(None, ge=1)
    evals_per_epoch: int | None = Field(None, ge=1)
    precision: Literal["no", "bf16", "fp16"] | None = None
    group_by_length: bool | None = Field(None, description="training batches of similar length (less padding; "
                                                           "a different seeded batch order)")
    grad_accum_steps: int | None = Field(None, ge=1, description="batches summed into one optimizer step (effective "
                                                                "batch: batch_size x grad_accum_steps)")
    eval_every_steps: int | None = Field(None, ge=1, description="score the dev sets every N optimizer steps and at "
                                                                "the end (instead of evals_per_epoch)")
    patience: int | None = Field(None, ge=1, description="stop training after N dev evaluations without a better "
                                                        "score")
    null_score_diff_threshold: float | None = Field(None, description="span QA with unanswerable questions "
                                                                     "(SQuAD v2.0): predict no answer when the null "
                                                                     "score beats the best span by more (default 0, "
                                                                     "as run_squad.py)")
    compile: bool | None = Field(None, description="train through torch.compile on GPUs (off by default; "
                                                   "on CPU accepted and left out)")

    def set_values(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PhaseHParams(_Strict):
    intermediate: HParams = HParams()
    target: HParams = HParams()
    tasks: dict[str, HParams] = {}


class Sampler(_Strict):
    """How multi-task intermediate training picks the task of each step."""

    kind: Literal["proportional", "uniform", "temperature"] = "proportional"
    temperature: float = Field(2.0, gt=0)


class Retrieval(_Strict):
    layer: int | None = Field(None, ge=0, description="hidden layer to pool; default: 14/24 of the depth")
    pooling: Literal["mean"] = "mean"
    max_length: int = Field(128, ge=8)
    batch_size: int = Field(64, ge=1)
    k: int = Field(4, ge=1, description="neighbourhood of the BUCC ratio margin")
    fine_tune: bool = Field(True, description="LAReQA and Mewsli-X: fine-tune a dual encoder on English pairs "
                                              "first (XTREME-R's baselines); false scores the encoder as is")


class Data(_Strict):
    data_dir: Path | None = None
    data_files: dict[str, Path] = {}


class Spec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$")
    model: str = TINY_MODEL
    # The base model as a sweep axis: every configuration and target on each (instead of `model`).
    models: list[str] | None = Field(None, min_length=1)
    model_seed: int = Field(0, ge=0, lt=2**32)
    intermediate: list[list[str]] = Field([[]], min_length=1)
    # Multi-task complementarity groups: each a task list whose mixture, leave-one-out mixtures and single
    # tasks are all in `intermediate`; the report compares them. Written as `{all_but_one: [...]}` entries
    # of `intermediate` (see `expand_intermediate`).
    complementarity: list[list[str]] = []
    targets: list[str] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, lt=2**32)]] = Field([1], min_length=1)  # numpy/torch seed range
    languages: dict[str, list[str]] = {}

    # A named fine-tuning recipe (xit.recipes): "xtreme" (the registry defaults) or "x-stilts" (Phang et al.'s
    # jiant settings); `hparams` below override it.
    recipe: Literal["xtreme", "x-stilts"] = "xtreme"
    hparams: PhaseHParams = PhaseHParams()
    sampler: Sampler = Sampler()
    retrieval: Retrieval = Retrieval()
    data: dict[str, Data] = {}
    # Training stages save their whole state to the store every N optimizer steps (0: never), so a
    # killed stage resumes where it was. Not part of any key: resuming gives the same result.
    checkpoint_every: int = Field(0, ge=0)
    # A sweep axis over intermediate training size: each configuration trains on the first n examples of one
    # seeded order of each task's training set (per seed; "full": all of it). Unset: full only.
    intermediate_sizes: list[Any] | None = Field(None, min_length=1)
    # Named evaluation slices per target (`xit tasks`: a task's slices), scored on their own in the report.
    slices: dict[str, list[str]] = {}
    # YAML task descriptors (files or directories of them) registered before the spec is checked.
    task_files: list[Path] = []
    # Prometheus Pushgateway for live metrics (http://host:9091); unset: $XIT_PUSHGATEWAY, if set.
    pushgateway: str | None = None

    @field_validator("intermediate")
    @classmethod
    def _unique_configs(cls, v: list[list[str]]) -> list[list[str]]:
        seen = set()
        for cfg in v:
            if len(set(cfg)) != len(cfg):
                raise ValueError(f"configuration {label(cfg)} names a task twice")
            if tuple(cfg) in seen:
                raise ValueError(f"configuration {label(cfg)} is listed twice")
            seen.add(tuple(cfg))
        return v

    @field_validator("pushgateway")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        from xit.inputs import url_problem

        if v is not None:
            why = url_problem(v)
            if why is not None:
                raise ValueError(f"{v!r}: {why}")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("lists an entry twice")
        if v is not None and any(not m.strip() for m in v):
            raise ValueError("an entry is empty")
        return v

    def model_list(self) -> list[str]:
        """The base models the sweep runs on: `models`, or the one `model`."""
        return list(self.models) if self.models else [self.model]

    @field_validator("intermediate_sizes")
    @classmethod
    def _sizes(cls, v: list[Any] | None) -> list[Any] | None:
        if v is None:
            return v
        for x in v:
            if x != "full" and (isinstance(x, bool) or not isinstance(x, int) or x < 1):
                raise ValueError(f"each entry is a positive number of training examples or 'full', not {x!r}")
        if len(set(map(str, v))) != len(v):
            raise ValueError("lists an entry twice")
        return sorted(v, key=lambda x: math.inf if x == "full" else x)

    @field_validator("targets", "seeds")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError("lists an entry twice")
        return v

    # --- resolution helpers used by the planner

    def source(self, task: str) -> DataSource | None:
        """The local data of a task; `xnli@zh` reads the files given for `xnli` unless given its own."""
        d = self.data.get(task, self.data.get(task.partition("@")[0]))
        return None if d is None else DataSource(d.data_dir, dict(d.data_files))

    def hparams_for(self, task: Task, phase: str) -> dict[str, Any]:
        hp = {**GLOBAL_HPARAMS, **task.defaults, **recipe_hparams(self.recipe, task, phase)}
        hp.update(getattr(self.hparams, phase).set_values())
        for name in dict.fromkeys((task.base_name, task.name)):  # xnli's settings apply to xnli@de too
            if name in self.hparams.tasks:
                hp.update(self.hparams.tasks[name].set_values())
        # One type per field (epochs 3 from a registry and 3.0 from a spec are the same setting, one key). A field
        # with no global default (max_query_length: dual encoders only) is there only where something sets it, so
        # adding one leaves every other stage's key as it was.
        return {k: v for k, v in HParams.model_validate(hp).model_dump().items()
                if v is not None or k in GLOBAL_HPARAMS}

    def retrieval_settings(self) -> dict[str, Any]:
        """What a BUCC/Tatoeba retrieval stage computes with: `retrieval:`, over the recipe's settings."""
        r = self.retrieval.model_dump(exclude={"fine_tune"})
        return {**r, **{k: v for k, v in recipe_retrieval(self.recipe).items()
                        if k not in self.retrieval.model_fields_set}}

    def fine_tunes(self, task: Task) -> bool:
        """Whether the sweep trains a dual encoder for this retrieval task before scoring it (LAReQA, Mewsli-X)."""
        return task.finetune is not None and self.retrieval.fine_tune

    def eval_languages(self, task: Task) -> list[str]:
        return list(self.languages.get(task.name, task.languages))


def label(cfg: list[str] | tuple[str, ...]) -> str:
    """How a configuration is shown and reported: "[]" (baseline), "[mnli]", "[mnli, squad]"."""
    return "[" + ", ".join(cfg) + "]"


def load_spec(path: str | Path) -> Spec:
    """Read, parse and fully validate a spec file; raise XitError with one line on bad input."""
    specs = load_specs(path)
    if len(specs) > 1:
        raise XitError(f"{path}: {len(specs)} Workflows in one file (one spec each): this command takes one spec ("
                       "`xit validate` and `xit plan` read them all)")
    return specs[0]


def load_specs(path: str | Path) -> list[Spec]:
    """Every spec in a file: the one spec of a spec file or a one-Workflow pipeline, or one per Argo
    Workflow of a multi-document pipeline (pipelines/sampler-temperature.yaml holds three)."""
    from xit.inputs import parse_yaml_documents, read_text

    path = Path(path)
    docs = parse_yaml_documents(read_text(path, "spec"), path) or [None]
    if len(docs) > 1 and not all(isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("argoproj.io/")
                                 for d in docs):
        raise XitError(f"{path}: {len(docs)} YAML documents: a spec is one document (several only as Argo "
                       "Workflows, each holding one spec)")
    try:
        return [parse_spec(raw, path) for raw in docs]
    except RecursionError:  # a structure nested deeper than any spec field goes
        raise XitError(f"{path}: nested too deeply to be a spec") from None


def _unwrap_workflow(raw: Any, path: Path) -> Any:
    """The spec inside an Argo Workflow, WorkflowTemplate or CronWorkflow file (pipelines/*.yaml pass the spec
    as the `spec` parameter of the chart's xit-sweep template), so `xit validate` and `xit plan` read a
    pipeline as they read a spec; anything else is returned as it is."""
    if not (isinstance(raw, dict) and str(raw.get("apiVersion", "")).startswith("argoproj.io/")):
        return raw
    body = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    if raw.get("kind") == "CronWorkflow":
        body = body.get("workflowSpec") if isinstance(body.get("workflowSpec"), dict) else {}
    params = (body.get("arguments") or {}).get("parameters") if isinstance(body.get("arguments"), dict) else None
    for p in params if isinstance(params, list) else []:
        if isinstance(p, dict) and p.get("name") == "spec" and isinstance(p.get("value"), str):
            from xit.inputs import parse_yaml

            try:
                return parse_yaml(p["value"], "")
            except XitError as e:  # ": invalid YAML (line L, column C): problem"
                raise XitError(f"{path}: the workflow's 'spec' parameter is not valid YAML"
                               f"{str(e).removeprefix(': invalid YAML')}") from None
    raise XitError(f"{path}: an Argo {raw.get('kind', 'object')} without a 'spec' parameter holding an xit spec")


def parse_spec(raw: Any, path: Path) -> Spec:
    raw = _unwrap_workflow(raw, path)
    if not isinstance(raw, dict):
        raise XitError(f"{path}: a spec is a YAML mapping with at least 'name' and 'targets'")
    if isinstance(raw.get("targets"), list):
        targets, group_langs = _expand_groups(raw["targets"])
        raw = {**raw, "targets": targets}
        if group_langs and isinstance(raw.get("languages", {}), dict):
            raw["languages"] = {**group_langs, **raw.get("languages", {})}
    if isinstance(raw.get("intermediate"), list) and any(isinstance(x, dict) for x in raw["intermediate"]):
        configs, groups = expand_intermediate(raw["intermediate"], path)
        raw = {**raw, "intermediate": configs, "complementarity": [*raw.get("complementarity", []), *groups]}
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        # An unknown key first: a typo ("target:") also makes a required key ("targets") missing.
        err = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise XitError(f"{path}: field '{loc}': {msg}") from None
    _resolve_paths(spec, path.parent)
    _register_custom_tasks(spec, path)
    _check(spec, path)
    return spec


ALL_BUT_ONE = "all_but_one"


def expand_intermediate(entries: list[Any], path: Path) -> tuple[list[Any], list[list[str]]]:
    """Expand ``{all_but_one: [a, b, c]}`` entries of `intermediate` in place into the mixture [a, b, c], its
    leave-one-out mixtures [b, c], [a, c], [a, b] and the single tasks [a], [b], [c] (those not already
    listed elsewhere in `intermediate`); return the configurations and the groups (for the report's
    complementarity section). Other entries pass through for the model's own checks."""
    explicit = {tuple(x) for x in entries if isinstance(x, list) and all(isinstance(t, str) for t in x)}
    out: list[Any] = []
    groups: list[list[str]] = []
    added: set[tuple[str, ...]] = set()
    for i, x in enumerate(entries):
        if not isinstance(x, dict):
            out.append(x)
            continue
        where, field = f"{path}: field 'intermediate.{i}'", f"{path}: field 'intermediate.{i}.{ALL_BUT_ONE}'"
        if set(x) != {ALL_BUT_ONE}:
            extra = sorted(map(str, set(x) - {ALL_BUT_ONE}))
            raise XitError(f"{where}: unknown field {extra[0]!r}; a mapping here is {{{ALL_BUT_ONE}: [task, ...]}}"
                           if extra else f"{where}: a mapping here is {{{ALL_BUT_ONE}: [task, ...]}}")
        tasks = x[ALL_BUT_ONE]
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise XitError(f"{field}: a list of task names")
        if len(tasks) < 2:
            raise XitError(f"{field}: give at least two tasks (the mixture and its leave-one-out "
                           f"mixtures), got {len(tasks)}")
        if len(set(tasks)) != len(tasks):
            raise XitError(f"{field}: names a task twice")
        if tasks in groups:
            raise XitError(f"{field}: the group {label(tasks)} is listed twice")
        groups.append(list(tasks))
        loo = [[t for t in tasks if t != drop] for drop in tasks]
        for cfg in [list(tasks), *loo, *([t] for t in tasks)]:
            if tuple(cfg) not in explicit and tuple(cfg) not in added:
                added.add(tuple(cfg))
                out.append(cfg)
    return out, groups


def _register_custom_tasks(spec: Spec, path: Path) -> None:
    from xit.tasks.custom import load_task_dir, load_task_file

    for i, f in enumerate(spec.task_files):
        if f.is_dir():
            load_task_dir(f)
        elif f.is_file():
            load_task_file(f)
        else:
            raise XitError(f"{path}: field 'task_files.{i}': no such file or directory {f}")


def _expand_groups(targets: list[Any]) -> tuple[list[Any], dict[str, list[str]]]:
    """Benchmark names ("xtreme") stand for their tasks, in order. A task both in a group and named on its
    own is kept once; a task named twice on its own stays twice (and is rejected as a duplicate). A language
    group ("fi-hu") also gives the languages its tasks are evaluated in (the second value; `languages:` in the
    spec overrides it per task)."""
    out: list[Any] = []
    named: set[str] = set()
    langs: dict[str, list[str]] = {}
    for x in targets:
        if not isinstance(x, str):  # pydantic names the bad entry
            out.append(x)
        elif x in TARGET_GROUPS or x in LANGUAGE_GROUPS:
            for t, ls in group_tasks(x).items():
                if t not in out:
                    out.append(t)
                    if ls is not None:
                        langs[t] = list(ls)
        else:
            if x in named or x not in out:
                out.append(x)
            named.add(x)
            langs.pop(x, None)  # named on its own: all of its languages
    return out, langs


def _resolve_paths(spec: Spec, base: Path) -> None:
    """Relative paths in a spec are relative to the spec file's directory."""

    def res(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    for d in spec.data.values():
        if d.data_dir is not None:
            d.data_dir = res(d.data_dir)
        d.data_files = {k: res(v) for k, v in d.data_files.items()}
    spec.task_files = [res(p) for p in spec.task_files]
    if spec.model != TINY_MODEL and spec.model.startswith((".", "~")):
        spec.model = str(res(Path(spec.model)))
    if spec.models:
        spec.models = [m if m == TINY_MODEL or not m.startswith((".", "~")) else str(res(Path(m)))
                       for m in spec.models]


def needed_data(spec: Spec) -> dict[str, set[tuple[str, str]]]:
    """task → the (language, split) pairs this spec will load."""
    need: dict[str, set[tuple[str, str]]] = {}
    for cfg in spec.intermediate:
        for name in cfg:
            t = get_task(name)
            need.setdefault(name, set()).update({(t.train_language, "train"), (t.train_language, "dev")})
    for name in spec.targets:
        t = get_task(name)
        s = need.setdefault(name, set())
        if t.format == "retrieval":
            splits = ["dev", t.eval_split] if t.retrieval == "bucc" else [t.eval_split]
            s.update((lang, sp) for lang in spec.eval_languages(t) for sp in splits)
        else:
            s.update({(t.train_language, "train"), (t.train_language, "dev")})
            s.update((lang, t.eval_split) for lang in spec.eval_languages(t))
    return need


def _check(spec: Spec, path: Path) -> None:
    for i, cfg in enumerate(spec.intermediate):
        for name in cfg:
            t = _task(path, f"intermediate.{i}", name)
            if "intermediate" not in t.roles:
                raise XitError(f"{path}: field 'intermediate.{i}': task {name!r} has no training "
                               f"data for intermediate training (it is a {'/'.join(sorted(t.roles))} task)")
        # `xnli@en` is `xnli`: one name per task, so equal configurations share their stages.
        spec.intermediate[i] = [get_task(name).name for name in cfg]
        if len(set(spec.intermediate[i])) != len(cfg):
            raise XitError(f"{path}: field 'intermediate.{i}': configuration {label(cfg)} names a task twice")
    if len({tuple(c) for c in spec.intermediate}) != len(spec.intermediate):
        raise XitError(f"{path}: field 'intermediate': two configurations are the same task list")
    configs = {tuple(c) for c in spec.intermediate}
    for i, group in enumerate(spec.complementarity):
        group = spec.complementarity[i] = [_task(path, f"complementarity.{i}", n).name for n in group]
        missing = [c for c in [group, *([t for t in group if t != d] for d in group), *([t] for t in group)]
                   if tuple(c) not in configs]
        if len(group) < 2 or missing:
            raise XitError(f"{path}: field 'complementarity.{i}': the group {label(group)} needs "
                           + (f"the configuration {label(missing[0])} in 'intermediate'" if missing
                              else "at least two tasks"))
    for name in spec.targets:
        t = _task(path, "targets", name)
        if "target" not in t.roles:
            raise XitError(f"{path}: field 'targets': task {name!r} is an intermediate-only task "
                           f"(its training language only); targets are evaluated zero-shot in other languages")
    for name, langs in spec.languages.items():
        t = _target(spec, path, "languages", name)
        if not langs:
            raise XitError(f"{path}: field 'languages.{name}': give at least one language, "
                           f"or leave {name!r} out to evaluate all of its languages")
        if len(set(langs)) != len(langs):
            raise XitError(f"{path}: field 'languages.{name}': lists a language twice")
        for lang in langs:
            if lang not in t.languages:
                raise XitError(f"{path}: field 'languages.{name}': task {name!r} has no language {lang!r}; "
                               f"it has: {', '.join(t.languages)}")
    for name, names in spec.slices.items():
        t = _target(spec, path, "slices", name)
        if not names or len(set(names)) != len(names):
            raise XitError(f"{path}: field 'slices.{name}': give each slice once, at least one")
        for sl in names:
            if sl not in t.slices:
                raise XitError(f"{path}: field 'slices.{name}': task {name!r} has no slice {sl!r}; "
                               f"it has: {', '.join(t.slices) or 'none'}")
            d = t.slices[sl]
            if d.kind == "languages" and not set(d.values) & set(spec.eval_languages(t)):
                raise XitError(f"{path}: field 'slices.{name}': slice {sl!r} is languages "
                               f"{', '.join(d.values)}, none of which is evaluated")
            if d.needs_local and spec.source(name) is None:
                raise XitError(f"{path}: field 'slices.{name}': slice {sl!r} needs the genre of each row, which "
                               f"only the original files carry: give them under data: {{{name}: ...}}")
    for field in ("data", "hparams.tasks"):
        names = spec.data if field == "data" else spec.hparams.tasks
        for name in names:
            _task(path, field, name)
    # Span-QA windows: the overlap (doc_stride) must leave a question and more context than it within max_length,
    # with a pair's special tokens (at most 4: XLM-R's <s> q </s></s> c </s>); the featuriser would refuse it mid-run.
    from xit.formats import span_qa_room

    for name, phase in [(n, "intermediate") for cfg in spec.intermediate for n in cfg] + \
                       [(n, "target") for n in spec.targets]:
        t = get_task(name)
        if t.format == "span_qa":
            hp = spec.hparams_for(t, phase)
            if span_qa_room(hp["max_length"], hp["doc_stride"], 4) < 1:
                raise XitError(f"{path}: field 'hparams': task {name!r} ({phase}): max_length {hp['max_length']} "
                               f"leaves no room for a question and a context window longer than doc_stride "
                               f"{hp['doc_stride']}; raise max_length or lower doc_stride")
    for name, pairs in needed_data(spec).items():
        src, t = spec.source(name), get_task(name)
        if src is None and t.local_data:  # a task without code reads its descriptor's own files: check them now
            for lang, split in sorted(pairs):
                try:
                    t.local_files(lang, split, None)
                except XitError as e:
                    raise XitError(f"{path}: field 'task_files': {e}") from None
            continue
        if src is None:
            if t.local_only:
                raise XitError(f"{path}: field 'data.{name}': task {name!r} has no public source ({t.source}); "
                               f"give its local files (data: {{{name}: {{data_dir: ...}}}})")
            continue
        checks = [(t, lang, split, "") for lang, split in sorted(pairs)]
        if spec.fine_tunes(t):  # the English pairs its dual encoder trains on
            checks += [(t.dual_encoder(), "en", split, "dual-encoder pairs; or set retrieval.fine_tune: false")
                       for split in ("train", "dev")]
        for task, lang, split, what in checks:
            try:
                files = task.local_files(lang, split, src)
            except XitError as e:
                raise XitError(f"{path}: field 'data.{name}': {e}{f' ({what})' if what else ''}") from None
            for f in files:
                if not Path(f).is_file():
                    raise XitError(f"{path}: field 'data.{name}': missing file {f} "
                                   f"({name} {lang} {split}{'; ' + what if what else ''})")
        if t.labels_from is not None:  # an inventory read from the training files (CCG): fail now, not mid-sweep
            try:
                t.for_data(src)
            except XitError as e:
                raise XitError(f"{path}: field 'data.{name}': {e}") from None
    if spec.models and "model" in spec.model_fields_set:
        raise XitError(f"{path}: field 'models': give either 'model' or 'models', not both")
    field = "models" if spec.models else "model"
    if spec.model == "" or not spec.model.strip():
        raise XitError(f"{path}: field 'model': empty (give a Hugging Face model id, a local model directory "
                       f"or {TINY_MODEL!r})")
    for model in spec.model_list():
        why = check_layer(spec.retrieval_settings().get("layer"), model_depth(model), model)
        if why is not None and any(get_task(t).format == "retrieval" for t in spec.targets):
            raise XitError(f"{path}: field 'retrieval.layer': {why}")
        if model != TINY_MODEL and is_local_path(model):
            p = Path(model).expanduser()
            # A Hugging Face layout, or open_clip's (open_clip_config.json): see xit.model_layouts.
            if not any((p / f).is_file() for f in ("config.json", "open_clip_config.json")):
                what = "no such directory" if not p.exists() else "no config.json in it"
                raise XitError(f"{path}: field '{field}': {model}: {what} "
                               f"(give a Hugging Face model id, a local model directory or {TINY_MODEL!r})")


def _task(path: Path, field: str, name: str) -> Task:
    try:
        return get_task(name)
    except XitError as e:
        raise XitError(f"{path}: field '{field}': {e}") from None


def _target(spec: Spec, path: Path, field: str, name: str) -> Task:
    """The task a per-target field (`languages`, `slices`) names, which must be one of the spec's targets."""
    t = _task(path, field, name)
    if name not in spec.targets:
        raise XitError(f"{path}: field '{field}.{name}': {name!r} is not one of the targets")
    return t
