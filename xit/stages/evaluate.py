"""The ``evaluate`` kind: zero-shot evaluation of a target model in every language of its task (and its
evaluation slices), with the predictions and the per-example statistics the report resamples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.plan import Stage
from xit.stage import Context
from xit.stages.common import EXAMPLES, device, source, summary, task_of, write_json
from xit.tasks.registry import check_language


def run(stage: Stage, ctx: Context, out: Path) -> None:
    from xit.formats import get_format
    from xit.modeling import load_model
    from xit.stats import example_stats

    p = stage.params
    task = task_of(stage, p["task"])
    fmt = get_format(task.format)
    model, tokenizer = load_model(ctx.input_dir(stage.inputs[0], "model"), [task], trained_as=task.train_task)
    dev = device()
    model.to(dev)
    per_lang, examples = {}, {}
    sliced: dict[str, dict[str, Any]] = {name: {} for name in p.get("slices", {})}
    src = source(stage, task.name)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for lang in p["languages"]:
        check_language(lang, f"plan: task {task.name!r}: language")  # a file name below: a plan is input too
        rows = task.load(lang, p["split"], src)
        if p["hp"].get("max_eval_examples"):
            rows = rows[: p["hp"]["max_eval_examples"]]
        preds = fmt.predict(model, task, rows, tokenizer, p["hp"], dev,
                            bar=lambda n, lang=lang: ctx.bar(f"evaluate {task.name} {lang}", n))
        per_lang[lang] = {**fmt.score(task, rows, preds), "n": len(rows)}
        for name, genres in p.get("slices", {}).items():
            keep = [i for i, r in enumerate(rows) if r.get("genre") in genres]
            sliced[name][lang] = ({**fmt.score(task, [rows[i] for i in keep], [preds[i] for i in keep]),
                                   "n": len(keep)} if keep else {"n": 0})
        stats = example_stats(fmt, task, rows, preds)
        if stats is not None:
            examples[lang] = stats.to_json()
        with open(out / "predictions" / f"{lang}.jsonl", "w") as f:
            for pred in preds:
                f.write(json.dumps(pred, ensure_ascii=False) + "\n")
    write_json(out / "metrics.json", {**summary(task, per_lang, ctx), **({"slices": sliced} if sliced else {})})
    if examples:  # what the report's intervals and paired tests resample (xit.stats)
        write_json(out / EXAMPLES, {"metric": task.metric, "languages": examples})
