"""The ``retrieval`` kind: BUCC/Tatoeba scored on an intermediate encoder's sentence vectors; LAReQA and
Mewsli-X on the dual encoder a ``target`` stage fine-tuned (or on the intermediate encoder itself).

Each retrieval task has its own scorer below, ``(task, stage params, data source, embed, device)`` ->
per-language metrics; the scoring itself is `xit.retrieval`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.plan import Stage
from xit.stage import Context
from xit.stages.common import EXAMPLES, device, source, summary, write_json
from xit.tasks.registry import DataSource, get_task

EXAMPLES_KEY = "_examples"  # where a scorer hands its per-query statistics to the stage


def run(stage: Stage, ctx: Context, out: Path) -> None:
    from xit.encoding import embed, num_layers
    from xit.model_ids import check_layer
    from xit.modeling import load_encoder, load_tokenizer

    p, r = stage.params, stage.params["retrieval"]
    task = get_task(p["task"])
    enc_dir = ctx.input_dir(stage.inputs[0], "model/encoder")
    dev = device()
    encoder, tokenizer = load_encoder(enc_dir).to(dev), load_tokenizer(enc_dir)
    why = check_layer(r["layer"], num_layers(encoder), "the base model")
    if why is not None:
        raise XitError(f"stage {stage.key}: retrieval {why}")
    src = source(stage, task.name)

    def emb(sents: list[str], what: str, query: bool = False) -> Any:
        length = r.get("max_query_length", r["max_length"]) if query else r["max_length"]
        return embed(encoder, tokenizer, sents, layer=r["layer"], max_length=length, pooling=r["pooling"],
                     batch_size=r["batch_size"], device=dev, progress=ctx.bar(f"embed {what}", len(sents)))

    per_lang = SCORERS.get(task.retrieval or "", _tatoeba)(task, p, src, emb, dev)
    # A scorer may give per-query statistics (Tatoeba: hit or miss of each query), kept only if they give back
    # the headline score, for the report's intervals and paired tests (xit.stats).
    examples = {}
    for lang, m in per_lang.items():
        stats = m.pop(EXAMPLES_KEY, None)
        if stats is not None and abs(stats.metric() - float(m[task.metric])) <= 1e-6:
            examples[lang] = stats.to_json()
    write_json(out / "metrics.json", summary(task, per_lang, ctx))
    if examples:
        write_json(out / EXAMPLES, {"metric": task.metric, "languages": examples})


def _tatoeba(task: Any, p: dict[str, Any], src: DataSource | None, emb: Callable, device: Any) -> dict[str, dict]:
    from xit.metrics.retrieval import tatoeba_hits
    from xit.retrieval import tatoeba_scores
    from xit.stats import ExampleStats

    per_lang = {}
    for lang in p["languages"]:
        row = task.load(lang, p["split"], src)[0]
        xx, en = emb(row["source"], f"{task.name} {lang}"), emb(row["target"], f"{task.name} {lang} en")
        # The headline is en->xx (English queries): one hit or miss per English query.
        per_lang[lang] = {**tatoeba_scores(xx, en), "n": len(row["source"]),
                          EXAMPLES_KEY: ExampleStats("mean", 100.0 * tatoeba_hits(en, xx))}
    return per_lang


def _bucc(task: Any, p: dict[str, Any], src: DataSource | None, emb: Callable, device: Any) -> dict[str, dict]:
    from xit.retrieval import bucc_scores

    per_lang = {}
    for lang in p["languages"]:
        splits = {}
        for split in ("dev", p["split"]):
            row = task.load(lang, split, src)[0]
            splits[split] = (emb(row["source"], f"{task.name} {lang} {split} source"),
                             emb(row["target"], f"{task.name} {lang} {split} en"), row)
        per_lang[lang] = bucc_scores(splits["dev"], splits[p["split"]], k=p["retrieval"]["k"])
        per_lang[lang]["n"] = len(splits[p["split"]][2]["gold"])
    return per_lang


def _lareqa(task: Any, p: dict[str, Any], src: DataSource | None, emb: Callable, device: Any) -> dict[str, dict]:
    """The pool is the candidates of every evaluated language (all 11 for the benchmark)."""
    from xit.retrieval import lareqa_candidate_text, lareqa_scores

    rows = {lang: task.load(lang, p["split"], src)[0] for lang in p["languages"]}
    questions = {lang: emb([q.strip() for q in row["questions"]], f"{task.name} {lang} questions", query=True)
                 for lang, row in rows.items()}
    candidates = {lang: emb([lareqa_candidate_text(s, c) for s, c in zip(row["sentences"], row["contexts"],
                                                                         strict=True)],
                            f"{task.name} {lang} candidates")
                  for lang, row in rows.items()}
    return lareqa_scores(rows, questions, candidates, device=device)


def _mewslix(task: Any, p: dict[str, Any], src: DataSource | None, emb: Callable, device: Any) -> dict[str, dict]:
    """The entity candidate set is shared by all languages: embedded once."""
    from xit.retrieval import mewslix_scores

    rows = {lang: task.load(lang, p["split"], src)[0] for lang in p["languages"]}
    first = next(iter(rows.values()))
    if any(row["candidate_ids"] != first["candidate_ids"] for row in rows.values()):
        raise XitError(f"task {task.name!r}: the languages' entity candidate sets differ")
    entities = emb(first["candidates"], f"{task.name} entities")
    mentions = {lang: emb(row["mentions"], f"{task.name} {lang} mentions", query=True) for lang, row in rows.items()}
    return mewslix_scores(rows, mentions, entities, device=device)


# A task's `retrieval` field -> its scorer (Tatoeba's for the rest).
SCORERS = {"bucc": _bucc, "lareqa": _lareqa, "mewslix": _mewslix}
