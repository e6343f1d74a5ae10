"""The plan: a pure function of the spec — a DAG of stages, each with a content key.

Stage kinds (their versions, bodies and needs: `xit.stages`):

* ``intermediate`` — the encoder after intermediate training on a task list. The empty
  list is the base encoder itself (downloaded or built once, then pinned in the store);
  every other intermediate stage starts from it.
* ``target`` — fine-tuning on a target task's English data from an intermediate encoder
  (fresh head), checkpoint selected on English dev. Targets that train on the same English
  data (XQuAD and MLQA: SQuAD v1.1; `Task.train_task`) with the same hyper-parameters share
  one target stage, with one evaluate stage each.
* ``evaluate`` — zero-shot evaluation of a target model in every language of its task.
* ``retrieval`` — BUCC/Tatoeba scored directly on an intermediate encoder; LAReQA/Mewsli-X on the dual
  encoder a ``target`` stage fine-tuned from it (XTREME-R's baselines; ``retrieval.fine_tune: false`` scores
  the intermediate encoder directly).
* ``report`` — tables and plots from all evaluate/retrieval stages of the sweep.

A stage's key hashes its kind, its parameters (everything that determines its output,
data by content fingerprint) and its inputs' keys, so two sweeps that need the same work
share the stage. Paths to local data travel in ``runtime`` and are not hashed: moving
files does not invalidate results, changing them does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.labels import MODEL_SEP
from xit.model_ids import TINY_MODEL, TINY_VERSION, is_local_path
from xit.spec import EVAL_HPARAMS, EVAL_ONLY_HPARAMS, Spec, label, needed_data
from xit.stages import KIND_NAMES, KINDS
from xit.tasks.registry import Task, file_sha256, get_task

PLAN_VERSION = 1


@dataclass
class Stage:
    key: str
    kind: str
    params: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    # The spec's `recipe:` for the stages it shapes (trained, evaluated, retrieval); shown by `xit plan`, not
    # hashed (what it sets is, through the parameters).
    recipe: str = ""


def sweep_prefix(ref: str) -> str:
    """The store prefix of sweep ``<name>/<sweep_id>``."""
    return f"sweeps/{ref}"


@dataclass
class Plan:
    name: str
    sweep_id: str
    stages: list[Stage]
    spec: dict[str, Any]
    version: int = PLAN_VERSION
    # Custom (YAML-described) tasks the stages use, so a pod that reads the plan can register them.
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``<name>/<sweep_id>``: how a plan step names the sweep (``xit stage run --sweep``)."""
        return f"{self.name}/{self.sweep_id}"

    @property
    def prefix(self) -> str:
        """Where the sweep's spec, plan and published report live in the store."""
        return sweep_prefix(self.ref)

    def stage(self, key: str) -> Stage:
        index = self.__dict__.get("_index")
        if index is None or len(index) != len(self.stages):  # built once; a plan is not edited after build_plan
            index = self.__dict__["_index"] = {s.key: s for s in self.stages}
        if key not in index:
            raise XitError(f"plan {self.name}/{self.sweep_id} has no stage {key!r}")
        return index[key]

    def by_kind(self, kind: str) -> list[Stage]:
        return [s for s in self.stages if s.kind == kind]

    def to_json(self) -> str:
        # Stages hold plain JSON values already: a shallow dict per stage (dataclasses.asdict deep-copies every
        # parameter, seconds for a 10,000-stage sweep), one line per stage so a plan file still diffs by stage.
        head = json.dumps({f.name: getattr(self, f.name) for f in fields(self) if f.name != "stages"},
                          sort_keys=True, separators=(",", ":"))
        stages = ",\n".join(json.dumps(vars(s), sort_keys=True, separators=(",", ":")) for s in self.stages)
        return head[:-1] + ',"stages":[\n' + stages + "\n]}"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        d = json.loads(text)
        if not isinstance(d, dict) or not {"name", "sweep_id", "stages", "spec"} <= set(d):
            raise KeyError("missing name/sweep_id/stages/spec")
        if d.get("version") != PLAN_VERSION:
            raise XitError(f"plan version {d.get('version')!r} is not supported (this xit reads {PLAN_VERSION})")
        d["stages"] = [Stage(**s) for s in d["stages"]]
        return cls(**d)

    def register_tasks(self) -> None:
        """Register the custom tasks the plan carries, so a pod that reads only the plan can run their stages.

        Explicit, not part of reading a plan: loading a plan (to show it, to publish a report) leaves the task
        registry as it was."""
        if self.tasks:
            from xit.tasks.custom import register_descriptor_dict

            for desc in self.tasks.values():
                register_descriptor_dict(desc)

    @classmethod
    def parse(cls, text: str, where: str) -> Plan:
        """`from_json` with every problem as one XitError naming ``where`` (a file or a store URL)."""
        try:
            return cls.from_json(text)
        except XitError as e:
            raise XitError(f"{where}: {e}") from None
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise XitError(f"{where}: not an xit plan ({e})") from None

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        from xit.inputs import read_text

        return cls.parse(read_text(Path(path), "plan", max_bytes=256 << 20), str(path))


_KEY_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # json.dumps's, built once


def stage_key(kind: str, params: dict[str, Any], inputs: list[str]) -> str:
    blob = _KEY_JSON.encode({"kind": kind, "v": KINDS[kind].version, "params": params, "inputs": inputs})
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def key_kind(key: str) -> str:
    """The kind a stage key names (``<kind>-<hash>``, as `stage_key` makes it); not checked against the kinds."""
    return key.split("-", 1)[0]


def model_fingerprint(spec: Spec, model: str | None = None) -> str:
    """What a base model is: the tiny model's version and seed, a local directory's file contents, or a Hub id."""
    model = spec.model if model is None else model
    if model == TINY_MODEL:
        return f"{TINY_MODEL}/v{TINY_VERSION}/seed{spec.model_seed}"
    if is_local_path(model):
        h = hashlib.sha256()
        for p in sorted(Path(model).expanduser().rglob("*")):
            if p.is_file():
                h.update(p.name.encode() + file_sha256(p).encode())
        return f"local:{h.hexdigest()[:24]}"
    return f"hub:{model}"


def train_hparams(hp: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters that shape a trained model: all but the evaluation-only ones."""
    return {k: v for k, v in hp.items() if k not in EVAL_ONLY_HPARAMS}


def build_plan(spec: Spec) -> Plan:
    stages: dict[str, Stage] = {}
    # Memoised for this build (a 10,000-stage sweep asks for the same few hundred answers thousands of times).
    fingerprints: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    hparams: dict[tuple[str, str, str], dict[str, Any]] = {}

    def fingerprint(name: str, pairs: set[tuple[str, str]] | list[tuple[str, str]]) -> str:
        k = (name, tuple(sorted(pairs)))
        if k not in fingerprints:
            fingerprints[k] = get_task(name).data_fingerprint(list(k[1]), spec.source(name))
        return fingerprints[k]

    def hparams_for(t: Task, phase: str) -> dict[str, Any]:
        """`spec.hparams_for`, once per (task, format, phase): callers read it, never change it."""
        k = (t.name, t.format, phase)
        if k not in hparams:
            hparams[k] = spec.hparams_for(t, phase)
        return hparams[k]

    def train_data(t: Task) -> list[tuple[str, str]]:
        return [(t.train_language, "train"), (t.train_language, "dev")]

    def runtime(names: list[str]) -> dict[str, Any]:
        data = {}
        for n in names:
            d = spec.source(n)
            if d is not None:
                data[n] = {"data_dir": str(d.data_dir) if d.data_dir else None,
                           "data_files": {k: str(v) for k, v in d.data_files.items()}}
        return {"data": data} if data else {}

    def add(kind: str, params: dict[str, Any], inputs: list[str], run: dict[str, Any], text: str) -> str:
        key = stage_key(kind, params, inputs)
        if spec.pushgateway:
            run = {**run, "pushgateway": spec.pushgateway}
        stages.setdefault(key, Stage(key, kind, params, inputs, run, text, "" if kind == "report" or not inputs
                                     else spec.recipe))
        return key

    need = needed_data(spec)
    ckpt = {"checkpoint_every": spec.checkpoint_every} if spec.checkpoint_every else {}
    # (config label, seed) -> intermediate key; with `intermediate_sizes`, one configuration per size, labelled
    # "[mnli] n=1000" (the full size keeps the plain label and the key of a sweep without sizes); with several
    # `models`, one per model too, labelled "[mnli] model=<id>" (every stage of a model descends from its own base
    # encoder, so stages of different models never share a key).
    inter: dict[tuple[str, int], str] = {}
    sizes: dict[str, tuple[str, Any]] = {}  # config label -> (label without size, size)
    of_model: dict[str, str] = {}  # config label -> base model
    models = spec.model_list()
    for model in models:
        base = add("intermediate", {"model": model, "model_fingerprint": model_fingerprint(spec, model),
                                    "model_seed": spec.model_seed, "tasks": []}, [], {},
                   "intermediate [] (base encoder)" + (f" {model}" if len(models) > 1 else ""))
        suffix = f"{MODEL_SEP}{model}" if len(models) > 1 else ""
        for cfg in spec.intermediate:
            for size in (spec.intermediate_sizes or ["full"]) if cfg else ["full"]:
                cfg_label = label(cfg) + ("" if size == "full" else f" n={size}") + suffix
                sizes[cfg_label], of_model[cfg_label] = (label(cfg) + suffix, size), model
                for seed in spec.seeds:
                    if not cfg:
                        inter[(cfg_label, seed)] = base
                        continue
                    tasks = [{"name": n, "hp": train_hparams(hparams_for(get_task(n), "intermediate")),
                              "data": fingerprint(n, train_data(get_task(n))),
                              **({} if size == "full" else {"size": size})} for n in cfg]
                    params = {"tasks": tasks, "seed": seed, "sampler": spec.sampler.model_dump()}
                    run = {**runtime(list(cfg)), **ckpt}
                    if model != TINY_MODEL and any(get_task(n).format == "mlm" for n in cfg):
                        # MLM starts from the pretrained LM head (the model, already keyed through the base stage).
                        params["mlm_head"] = "pretrained"
                        run["model"] = model
                    inter[(cfg_label, seed)] = add("intermediate", params, [base], run,
                                                   f"intermediate {cfg_label} seed {seed}")
    # What a retrieval stage computes with; `fine_tune` only decides which stages there are.
    retrieval = spec.retrieval_settings()
    entries = []
    for (cfg_label, seed), ikey in inter.items():
        for name in spec.targets:
            t = get_task(name)
            langs = spec.eval_languages(t)
            run = runtime([name])
            if spec.fine_tunes(t):
                # XTREME-R: fine-tune a dual encoder on the task's English pairs, then retrieve with it.
                dual = t.dual_encoder()
                hp = hparams_for(dual, "target")
                tparams = {"task": name, "hp": train_hparams(hp), "seed": seed, "dual_encoder": True,
                           "data": dual.data_fingerprint(train_data(dual), spec.source(name))}
                tkey = add("target", tparams, [ikey], {**run, **ckpt},
                           f"target {name} (dual encoder) from {cfg_label} seed {seed}")
                r = {**retrieval, "pooling": "cls", "layer": -1, "max_length": hp["max_length"],
                     "max_query_length": hp["max_query_length"], "batch_size": hp["eval_batch_size"]}
                params = {"task": name, "languages": langs, "split": t.eval_split, "retrieval": r,
                          "data": fingerprint(name, need[name])}
                ekey = add("retrieval", params, [tkey], run, f"retrieval {name} from {cfg_label} seed {seed}")
            elif t.format == "retrieval":
                params = {"task": name, "languages": langs, "split": t.eval_split,
                          "retrieval": retrieval, "data": fingerprint(name, need[name])}
                ekey = add("retrieval", params, [ikey], run, f"retrieval {name} on {cfg_label}"
                           + (f" seed {seed}" if ikey != base else ""))
            else:
                hp = hparams_for(t, "target")
                if t.train_task:
                    # Trained as the shared task (XQuAD and MLQA: SQuAD v1.1), keyed by what it trains on, so the
                    # targets that share it, with the same hyper-parameters and data, share one stage.
                    tt = get_task(t.train_task)
                    tparams = {"task": tt.name, "hp": train_hparams(hp), "seed": seed,
                               "data": tt.data_fingerprint(train_data(tt), spec.source(name))}
                    trun = {"data": {tt.name: run["data"][name]}} if run else {}
                    tkey = stage_key("target", tparams, [ikey])
                    text = stages[tkey].label.split(" from ")[0] + f", {name}" if tkey in stages else \
                        f"target {tt.name} for {name}"
                    add("target", tparams, [ikey], {**trun, **ckpt}, "")
                    stages[tkey].label = f"{text} from {cfg_label} seed {seed}"
                else:
                    tparams = {"task": name, "hp": train_hparams(hp), "seed": seed,
                               "data": fingerprint(name, train_data(t))}
                    tkey = add("target", tparams, [ikey], {**run, **ckpt},
                               f"target {name} from {cfg_label} seed {seed}")
                params = {"task": name, "languages": langs, "split": t.eval_split,
                          "hp": {k: hp[k] for k in EVAL_HPARAMS if k in hp},
                          "data": fingerprint(name, [(lang, t.eval_split) for lang in langs])}
                row_slices = {sl: list(t.slices[sl].values) for sl in spec.slices.get(name, [])
                              if t.slices[sl].kind == "genre"}
                if row_slices:  # scored on the rows of those genres too
                    params["slices"] = row_slices
                ekey = add("evaluate", params, [tkey], run, f"evaluate {name} from {cfg_label} seed {seed}")
            entry = {"key": ekey, "intermediate": cfg_label, "target": name, "seed": seed, "metric": t.metric}
            if spec.intermediate_sizes:
                entry["configuration"], entry["size"] = sizes[cfg_label]
            if len(models) > 1:
                entry["model"] = of_model[cfg_label]
            if spec.slices.get(name):
                entry["slices"] = {sl: {"kind": t.slices[sl].kind, "values": list(t.slices[sl].values)}
                                   for sl in spec.slices[name]}
            entries.append(entry)
    report = {"name": spec.name, "baseline": label([]), "entries": entries, "model": ", ".join(models)}
    if spec.complementarity:  # only then, so other reports keep their keys
        report["complementarity"] = [list(g) for g in spec.complementarity]
    add("report", report,
        sorted({e["key"] for e in entries}), {}, f"report {spec.name}")
    ordered = sorted(stages.values(), key=lambda s: KIND_NAMES.index(s.kind))  # stable: creation order per kind
    _check_order(ordered)
    sweep_id = hashlib.sha256("".join(s.key for s in ordered).encode()).hexdigest()[:12]
    from xit.tasks.custom import descriptor_dict

    used = {t.partition("@")[0] for cfg in spec.intermediate for t in cfg} | set(spec.targets)
    custom = {n: d for n in sorted(used) if (d := descriptor_dict(n)) is not None}
    return Plan(name=spec.name, sweep_id=sweep_id, stages=ordered, spec=spec.model_dump(mode="json"), tasks=custom)


def _check_order(stages: list[Stage]) -> None:
    seen: set[str] = set()
    for s in stages:
        missing = [k for k in s.inputs if k not in seen]
        if missing:  # pragma: no cover - guards the kind ordering above
            raise AssertionError(f"stage {s.key} comes before its inputs {missing}")
        seen.add(s.key)
