"""Running one stage: the single unit of execution, shared by the local runner and Argo pods.

`run_stage(plan, key, store)`:

1. if ``stages/<key>/MANIFEST.json`` exists the stage is committed: return at once;
2. otherwise clear whatever a killed attempt left under ``stages/<key>/``;
3. run the stage's kind into a scratch directory, reading inputs from the store;
4. upload every file, then write the manifest (sha256 + size per file) last.

A stage without a manifest is never taken as done, so a run killed at any point can be
started again: finished stages are skipped, the unfinished one starts over cleanly.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from xit import __version__
from xit.errors import XitError
from xit.plan import Plan, Stage
from xit.store import Store
from xit.tasks.registry import DataSource, get_task

MANIFEST = "MANIFEST.json"
Bar = Callable[..., Callable[[int], None]]


def _no_bar(description: str, total: int, keep: bool = False) -> Callable[[int], None]:
    return lambda n: None


def stage_prefix(key: str) -> str:
    return f"stages/{key}"


def is_committed(store: Store, key: str) -> bool:
    return store.exists(f"{stage_prefix(key)}/{MANIFEST}")


def read_metrics(store: Store, key: str) -> dict[str, Any]:
    return json.loads(store.read_text(f"{stage_prefix(key)}/metrics.json"))


def run_stage(plan: Plan, key: str, store: Store, bar: Bar = _no_bar) -> str:
    """Run one stage of the plan unless committed; return "skipped" or "done"."""
    stage = plan.stage(key)
    if is_committed(store, key):
        return "skipped"
    missing = [k for k in stage.inputs if not is_committed(store, k)]
    if missing:
        raise XitError(f"stage {key}: input stage(s) not committed yet: {', '.join(missing)}")
    prefix = stage_prefix(key)
    store.delete_prefix(prefix)  # leftovers of an attempt that died before its manifest
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"xit-{key}-") as tmp:
        scratch = Path(tmp)
        KINDS[stage.kind](stage, store, scratch, bar)
        files = sorted(p for p in scratch.rglob("*") if p.is_file())
        manifest = {"key": key, "kind": stage.kind, "xit_version": __version__,
                    "seconds": round(time.time() - started, 3), "files": {}}
        for p in files:
            rel = p.relative_to(scratch).as_posix()
            manifest["files"][rel] = {"sha256": _sha256(p), "size": p.stat().st_size}
            store.put_file(p, f"{prefix}/{rel}")
        store.write_text(f"{prefix}/{MANIFEST}", json.dumps(manifest, indent=1, sort_keys=True))
    return "done"


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _source(stage: Stage, task: str) -> DataSource | None:
    d = stage.runtime.get("data", {}).get(task)
    if d is None:
        return None
    return DataSource(Path(d["data_dir"]) if d.get("data_dir") else None,
                      {k: Path(v) for k, v in d.get("data_files", {}).items()})


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False))


# --- the kinds


def _intermediate(stage: Stage, store: Store, out: Path, bar: Bar) -> None:
    from xit.modeling import load_tokenizer, materialise_base, new_model, save_model
    from xit.train import Job, train

    p = stage.params
    if not p["tasks"]:
        materialise_base(p["model"], out / "model" / "encoder", seed=p["model_seed"])
        _write_json(out / "metrics.json", {"kind": "intermediate", "tasks": [], "model": p["model"]})
        return
    base = store.local_dir(f"{stage_prefix(stage.inputs[0])}/model/encoder")
    tasks = [get_task(t["name"]) for t in p["tasks"]]
    jobs = [Job(task, t["hp"], task.load(task.train_language, "train", _source(stage, task.name)),
                task.load(task.train_language, "dev", _source(stage, task.name)))
            for task, t in zip(tasks, p["tasks"], strict=True)]
    model, tokenizer = new_model(base, tasks, seed=p["seed"]), load_tokenizer(base)
    record = train(model, tokenizer, jobs, seed=p["seed"], sampler=p["sampler"], bar=bar)
    save_model(model, tokenizer, out / "model")
    _write_json(out / "metrics.json", {"kind": "intermediate", "tasks": [t.name for t in tasks], **record})


def _target(stage: Stage, store: Store, out: Path, bar: Bar) -> None:
    from xit.modeling import load_tokenizer, new_model, save_model
    from xit.train import Job, train

    p = stage.params
    task = get_task(p["task"])
    enc = store.local_dir(f"{stage_prefix(stage.inputs[0])}/model/encoder")
    src = _source(stage, task.name)
    job = Job(task, p["hp"], task.load(task.train_language, "train", src), task.load(task.train_language, "dev", src))
    model, tokenizer = new_model(enc, [task], seed=p["seed"]), load_tokenizer(enc)
    record = train(model, tokenizer, [job], seed=p["seed"], sampler={}, bar=bar)
    save_model(model, tokenizer, out / "model")
    _write_json(out / "metrics.json", {"kind": "target", "task": task.name, **record})


def _evaluate(stage: Stage, store: Store, out: Path, bar: Bar) -> None:
    from xit.formats import get_format
    from xit.modeling import load_model

    p = stage.params
    task = get_task(p["task"])
    fmt = get_format(task.format)
    model, tokenizer = load_model(store.local_dir(f"{stage_prefix(stage.inputs[0])}/model"), [task])
    device = _device()
    model.to(device)
    per_lang = {}
    src = _source(stage, task.name)
    for lang in p["languages"]:
        rows = task.load(lang, p["split"], src)
        if p["hp"].get("max_eval_examples"):
            rows = rows[: p["hp"]["max_eval_examples"]]
        preds = fmt.predict(model, task, rows, tokenizer, p["hp"], device,
                            bar=lambda n, lang=lang: bar(f"evaluate {task.name} {lang}", n))
        per_lang[lang] = {**fmt.score(task, rows, preds), "n": len(rows)}
        with open(_mk(out / "predictions" / f"{lang}.jsonl"), "w") as f:
            for pred in preds:
                f.write(json.dumps(pred, ensure_ascii=False) + "\n")
    _write_json(out / "metrics.json", _summary(task, per_lang))


def _retrieval(stage: Stage, store: Store, out: Path, bar: Bar) -> None:
    from xit.modeling import load_encoder, load_tokenizer
    from xit.retrieval import bucc_scores, embed, tatoeba_scores

    p, r = stage.params, stage.params["retrieval"]
    task = get_task(p["task"])
    enc_dir = store.local_dir(f"{stage_prefix(stage.inputs[0])}/model/encoder")
    device = _device()
    encoder, tokenizer = load_encoder(enc_dir).to(device), load_tokenizer(enc_dir)
    src = _source(stage, task.name)

    def emb(sents: list[str], what: str) -> Any:
        return embed(encoder, tokenizer, sents, layer=r["layer"], max_length=r["max_length"],
                     batch_size=r["batch_size"], device=device, progress=bar(f"embed {what}", len(sents)))

    per_lang = {}
    for lang in p["languages"]:
        if task.retrieval == "bucc":
            splits = {}
            for split in ("dev", p["split"]):
                row = task.load(lang, split, src)[0]
                splits[split] = (emb(row["source"], f"{task.name} {lang} {split} source"),
                                 emb(row["target"], f"{task.name} {lang} {split} en"), row)
            per_lang[lang] = bucc_scores(splits["dev"], splits[p["split"]], k=r["k"])
            per_lang[lang]["n"] = len(splits[p["split"]][2]["gold"])
        else:
            row = task.load(lang, p["split"], src)[0]
            per_lang[lang] = {**tatoeba_scores(emb(row["source"], f"{task.name} {lang}"),
                                               emb(row["target"], f"{task.name} {lang} en")),
                              "n": len(row["source"])}
    _write_json(out / "metrics.json", _summary(task, per_lang))


def _summary(task: Any, per_lang: dict[str, dict]) -> dict[str, Any]:
    scores = [m[task.metric] for m in per_lang.values()]
    return {"task": task.name, "metric": task.metric, "languages": per_lang,
            "score": sum(scores) / len(scores) if scores else None}


def collect_scores(store: Store, entries: list[dict[str, Any]]) -> list[Any]:
    """Per-language scores of a report's entries, read from their committed metrics."""
    from xit.report import Score

    scores, cache = [], {}
    for e in entries:
        m = cache.setdefault(e["key"], read_metrics(store, e["key"]))
        for lang, vals in m["languages"].items():
            scores.append(Score(e["intermediate"], e["target"], lang, e["metric"], float(vals[e["metric"]]),
                                e["seed"]))
    return scores


def _report(stage: Stage, store: Store, out: Path, bar: Bar) -> None:
    from xit.report import build_report

    p = stage.params
    build_report(collect_scores(store, p["entries"]), out, baseline=p["baseline"], title=f"xit sweep {p['name']}")


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


KINDS = {"intermediate": _intermediate, "target": _target, "evaluate": _evaluate,
         "retrieval": _retrieval, "report": _report}
