"""XTREME-R targets (Ruder et al., 2021) beyond XTREME: LAReQA, Mewsli-X and XTREME-R's larger language sets.

XTREME-R keeps XNLI, UD-POS, WikiANN-NER, XQuAD, MLQA, TyDiQA-GoldP and Tatoeba, adds XCOPA and two
language-agnostic retrieval tasks, and drops PAWS-X and BUCC. The language sets follow the code of
google-research/xtreme (``utils_preprocess.py``, ``scripts/download_data.sh``, ``third_party/utils_mewslix.py``):

=============  ==========================================================================================
lareqa         XQuAD-R (google-research-datasets/lareqa ``xquad-r/{lang}.json``: XQuAD plus ``sentence_breaks``
               per paragraph), 11 languages. Every question retrieves from the pool of all sentences of all
               languages; relevant are its answer sentence in every language. mAP@20.
mewslix        Mewsli-X: WikiNews entity mentions in 11 languages retrieve their WikiData entity from one set
               of ~1M entity descriptions in 50 languages. mAP@20 (= MRR@20: one gold entity), macro-averaged
               over languages. Files as ``get-mewsli-x.sh`` (google-research ``dense_representations_for_entity_
               retrieval/mel``) leaves them: ``wikinews_mentions-{dev,test}.jsonl``, ``candidate_set_entities.jsonl``
panx-r         WikiANN-NER on XTREME-R's 48 languages (XTREME's 40 + qu pl uk az lt pa gu ro)
udpos-r        UD-POS on XTREME-R's 38 languages (XTREME's 33 + lt pl uk wo ro): UD v2.5 for XTREME's 33, v2.7
               for the five new ones (as download_data.sh), every treebank of a language concatenated; read as udpos
tatoeba-r      Tatoeba (LASER v1 test set) on XTREME-R's 41 languages (XTREME's 36 + az lt pl uk ro)
=============  ==========================================================================================

XQuAD keeps its 11 XTREME languages in XTREME-R (``download_xquad`` fetches the same 11 files), so the XTREME
``xquad`` task serves both benchmarks; so do ``xnli``, ``xcopa``, ``mlqa`` and ``tydiqa``.

As XTREME-R's baselines, LAReQA and Mewsli-X first fine-tune a dual encoder (`Task.finetune`: LAReQA on SQuAD
v1.1 question/answer-sentence pairs, Mewsli-X on ``wikipedia_pairs-{train,dev}.jsonl``) and retrieve with its
first-token vectors; ``retrieval.fine_tune: false`` scores the intermediate encoder's mean-pooled layer instead,
as XTREME scores Tatoeba. XTREME-R scores Tatoeba with a SQuAD-fine-tuned encoder: that is the intermediate
configuration ``[squad]`` here.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.english import SQUAD_FILES
from xit.tasks.loading import (
    Rows,
    iter_jsonl,
    local_file,
    make_io,
    parallel_rows,
    squad_rows,
)
from xit.tasks.registry import DataSource, Task, file_identity, register
from xit.tasks.xtreme import (
    _CLS,
    _RETRIEVAL,
    PANX_DEFAULTS,
    PANX_IO,
    PANX_LABELS,
    PANX_LANGS,
    TATOEBA_ISO3,
    UDPOS_NAMES,
    UDPOS_TEST_ONLY,
    UPOS_LABELS,
    _one_file,
    _tatoeba_hub,
    tatoeba_task,
    ud_files,
    ud_release_rows,
    udpos_parse,
)

FAMILY = "xtreme-r"

LAREQA_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MEWSLIX_LANGS = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")
PANX_R_LANGS = (*PANX_LANGS, "qu", "pl", "uk", "az", "lt", "pa", "gu", "ro")
UDPOS_R_LANGS = (*UDPOS_NAMES, "lt", "pl", "uk", "wo", "ro")
TATOEBA_R_ISO3 = {**TATOEBA_ISO3, "az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron"}

# Where the production path fetches what the Hub does not hold (through `datasets`' download manager and cache).
LAREQA_URL = "https://github.com/google-research-datasets/lareqa/raw/master/xquad-r"
LASER_TATOEBA_URL = "https://raw.githubusercontent.com/facebookresearch/LASER/master/data/tatoeba/v1"


def download(url: str) -> Path:
    """A local copy of ``url``, through `datasets`' download manager (cached like every `datasets` download)."""
    from datasets import DownloadManager

    return Path(DownloadManager().download(url))


def _task(name: str, fmt: str, languages: tuple[str, ...], metric: str, source: str, io: dict[str, Any],
          **kw: Any) -> Task:
    return register(Task(name=name, format=fmt, languages=tuple(languages), metric=metric, source=source,
                         family=FAMILY, **io, **kw))


# --------------------------------------------------------------------------- LAReQA (XQuAD-R)


def xquad_r_row(path: Path, lang: str) -> dict[str, Any]:
    """One language of XQuAD-R as a retrieval row.

    Candidates are the sentences of every paragraph (``context[start:end]`` for each ``sentence_breaks``
    pair), with ids ``{lang}_{paragraph number}_{sentence number}`` (paragraphs counted from 1 through the
    file). A question's answer sentence is the first sentence whose span holds ``answer_start``; every
    sentence of the paragraph with that text is gold. Questions whose answer start lies in no sentence are
    left out, as the official evaluation does.

    Returns ``{"question_ids", "questions", "candidate_ids", "sentences", "contexts", "gold"}`` with
    ``gold`` a list of ``[question_id, candidate_id]``; question ids are XQuAD's, shared across languages.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        articles = data["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise XitError(f"{path}: not XQuAD-R JSON ({type(e).__name__}: {e})") from None
    row: dict[str, Any] = {k: [] for k in ("question_ids", "questions", "candidate_ids", "sentences", "contexts",
                                           "gold")}
    n_para = 0
    for article in articles:
        for para in article.get("paragraphs", []):
            n_para += 1
            where = f"{path}: paragraph {n_para}"
            context = para.get("context")
            breaks = para.get("sentence_breaks")
            if not isinstance(context, str) or not isinstance(breaks, list) or not breaks:
                raise XitError(f"{where}: expected 'context' and 'sentence_breaks' (XQuAD-R, not plain XQuAD)")
            try:
                spans = [(int(s), int(e)) for s, e in breaks]
            except (TypeError, ValueError):
                raise XitError(f"{where}: 'sentence_breaks' must be [start, end] pairs") from None
            sentences = [context[s:e] for s, e in spans]
            ids = [f"{lang}_{n_para}_{i}" for i in range(len(sentences))]
            row["candidate_ids"] += ids
            row["sentences"] += sentences
            row["contexts"] += [context] * len(sentences)
            for qa in para.get("qas", []):
                answers = qa.get("answers", [])
                if len(answers) != 1:
                    raise XitError(f"{where}: question {qa.get('id')!r} has {len(answers)} answers; XQuAD-R has one")
                start = int(answers[0]["answer_start"])
                answer = next((context[s:e] for s, e in spans if s <= start < e), None)
                if answer is None:
                    continue
                qid = str(qa["id"])
                row["question_ids"].append(qid)
                row["questions"].append(qa["question"])
                row["gold"] += [[qid, cid] for cid, sent in zip(ids, sentences, strict=True) if sent == answer]
    return row


def _lareqa_hub(task: Task, lang: str, split: str) -> Rows:
    # google-research-datasets/xquad_r on the Hub drops `sentence_breaks`, without which the candidate pool
    # cannot be rebuilt: read the XQuAD-R files XTREME-R downloads, through `datasets`' download manager.
    return [xquad_r_row(download(f"{LAREQA_URL}/{lang}.json"), lang)]


# What XTREME-R's LAReQA baseline fine-tunes on: SQuAD v1.1 train (select on dev), each question paired with
# the sentence holding its first answer's start, encoded together with its paragraph (processors/lareqa.py).
# SQuAD has no sentence breaks: XTREME-R infers them with a rule-based breaker; `sentence_spans` is ours.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e no nos inc ltd co corp mt ft gen col lt sgt capt rev gov sen rep "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n a.m p.m ca approx fig vol".split()
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of English text, whitespace between them left out.

    A sentence ends at ``.``, ``!`` or ``?`` (with any closing quotes or brackets) followed by whitespace and an
    upper-case letter, a digit or an opening quote/bracket; not after a known abbreviation (``Mr.``, ``e.g.``,
    ``U.S.``, months, ...) or a single capital letter (an initial).
    """
    spans: list[tuple[int, int]] = []
    start = len(text) - len(text.lstrip())
    for m in _SENTENCE_END.finditer(text):
        if m.end() <= start:
            continue
        before = text[start:m.start()].rsplit(None, 1)
        word = before[-1] if before else ""
        if text[m.start()] == "." and (word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())):
            continue
        spans.append((start, m.end()))
        start = m.end() + len(text[m.end():]) - len(text[m.end():].lstrip())
    end = len(text.rstrip())
    if start < end:
        spans.append((start, end))
    return spans


def squad_pairs(rows: Rows) -> Rows:
    """SQuAD span_qa rows as dual-encoder pairs (question, answer sentence + paragraph); a question whose answer
    start is in no sentence is skipped, as XTREME-R does."""
    spans: dict[str, list[tuple[int, int]]] = {}
    out = []
    for r in rows:
        starts = r["answers"]["answer_start"]
        if not starts:
            continue
        ctx = r["context"]
        if ctx not in spans:
            spans[ctx] = sentence_spans(ctx)
        sent = next((ctx[a:b] for a, b in spans[ctx] if a <= int(starts[0]) < b), None)
        if sent:
            out.append({"query": r["question"], "candidate": sent, "candidate_context": ctx})
    return out


def _squad_pairs_hub(task: Task, lang: str, split: str) -> Rows:
    from xit.tasks.english import hf_squad

    return squad_pairs(hf_squad(split))


LAREQA_FINETUNE = make_io(
    lambda lang: ("train", "dev"),
    _one_file(lambda lang, split: (SQUAD_FILES[split],)),
    lambda task, lang, split, files: squad_pairs(squad_rows(files[0])),
    _squad_pairs_hub,
)


_task(
    "lareqa", "retrieval", LAREQA_LANGS, "map@20",
    "XQuAD-R (google-research-datasets/lareqa xquad-r/<lang>.json; the Hub's xquad_r lacks sentence_breaks)",
    make_io(
        lambda lang: ("test",),
        _one_file(lambda lang, split: (f"xquad-r/{lang}.json", f"lareqa/xquad-r/{lang}.json", f"{lang}.json")),
        lambda task, lang, split, files: [xquad_r_row(files[0], lang)],
        _lareqa_hub,
    ),
    retrieval="lareqa", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL),
    finetune=LAREQA_FINETUNE,
    finetune_source="rajpurkar/squad (SQuAD v1.1 train, validation; local train-v1.1.json, dev-v1.1.json): "
                    "question -> answer sentence + paragraph",
    # XTREME-R's scripts/train_lareqa.sh: lr 2e-5, 3 epochs, batch 4 per GPU x 4 accumulation steps, queries 96
    # and answers 256 tokens. xit has no gradient accumulation: batch_size 16 keeps the effective batch (the
    # in-batch negatives are then 16, not 4).
    finetune_defaults={"lr": 2e-5, "epochs": 3, "batch_size": 16, "max_query_length": 96, "max_length": 256,
                       "warmup_ratio": 0.0, "weight_decay": 0.0, "max_dev_examples": 2000},
)  # fmt: skip


# --------------------------------------------------------------------------- Mewsli-X

MEWSLIX_MENTIONS = {"dev": "wikinews_mentions-dev.jsonl", "test": "wikinews_mentions-test.jsonl"}
MEWSLIX_CANDIDATES = "candidate_set_entities.jsonl"
# Existing "{...}" in a mention's context is rewritten to "(...)" so the only braces mark the mention.
_BRACED = re.compile(r"\{(.*?)\}")


def _one_line(text: str) -> str:
    """Mewsli-X's baseline normalisation: line breaks become spaces, one pass of double spaces to single."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def entity_text(record: dict[str, Any]) -> str:
    """An entity's description as Mewsli-X's baseline embeds it: its sentences joined by spaces, on one line."""
    desc = record["description"]
    return _one_line(" ".join(desc[s["start"]:s["end"]] for s in record["sentence_spans"]))


def mention_text(text: str, sentence_spans: list[dict[str, int]], mention: dict[str, Any]) -> str:
    """A mention in context as Mewsli-X's baseline embeds it: ``"{m}: {left} { {m} } {right}"`` where left/right
    are the rest of the sentence holding the mention (braces already there become parentheses), on one line."""
    span = mention["mention_span"]
    start, end, surface = int(span["start"]), int(span["end"]), span["text"]
    if text[start:end] != surface:
        raise ValueError(f"mention {mention.get('example_id')!r}: text[{start}:{end}] is not {surface!r}")
    sent = next(((int(s["start"]), int(s["end"])) for s in sentence_spans
                 if int(s["start"]) <= start < int(s["end"]) and int(s["start"]) < end <= int(s["end"])), None)
    if sent is None:
        raise ValueError(f"mention {mention.get('example_id')!r} is not inside one sentence")
    left = _BRACED.sub(r"(\1)", text[sent[0]:start])
    right = _BRACED.sub(r"(\1)", text[end:sent[1]])
    return _one_line(f"{surface}: {left} {{ {surface} }} {right}")


@functools.lru_cache(maxsize=2)
def _entities(path: str, mtime: float, size: int) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    for i, rec in iter_jsonl(Path(path)):
        try:
            ids.append(str(rec["entity_id"]))
            texts.append(entity_text(rec))
        except (KeyError, TypeError) as e:
            raise XitError(f"{path}:{i}: not a Mewsli-X entity ({type(e).__name__}: {e})") from None
    return ids, texts


@functools.lru_cache(maxsize=2)
def _mentions(path: str, mtime: float, size: int) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """language -> (mention ids, mention texts, gold entity ids) of a ``wikinews_mentions-<split>.jsonl``."""
    by_lang: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for i, rec in iter_jsonl(Path(path)):
        try:
            ctx = rec["context"]
            if not ctx["text"]:
                raise XitError(f"{path}:{i}: empty article text: this is a 'no_text' release file; "
                               f"run get-mewsli-x.sh, which restores the WikiNews text")
            ids, texts, gold = by_lang.setdefault(ctx["language"], ([], [], []))
            for m in rec["mentions"]:
                texts.append(mention_text(ctx["text"], ctx["sentence_spans"], m))
                ids.append(str(m["example_id"]))
                gold.append(str(m["entity_id"]))
        except (KeyError, TypeError, ValueError) as e:
            raise XitError(f"{path}:{i}: not a Mewsli-X ContextualMentions line ({type(e).__name__}: {e})") from None
    return by_lang


def _parsed_once(fn: Any, path: Path) -> Any:
    return fn(*file_identity(path))


def mewslix_rows(mentions_file: Path, candidates_file: Path, lang: str) -> Rows:
    """One retrieval row: the mentions of ``lang`` (``context.language``) and the shared entity candidate set.

    ``{"mention_ids", "mentions", "gold", "candidate_ids", "candidates"}``. Both files are parsed once for all
    languages; the lists are shared between calls (read-only).
    """
    mention_ids, mentions, gold = _parsed_once(_mentions, mentions_file).get(lang, ([], [], []))
    cand_ids, cand_texts = _parsed_once(_entities, candidates_file)
    return [{"mention_ids": mention_ids, "mentions": mentions, "gold": gold, "candidate_ids": cand_ids,
             "candidates": cand_texts}]


def _mewslix_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    mentions = local_file(task, lang, split, source, MEWSLIX_MENTIONS[split])
    candidates = local_file(task, lang, "candidates", source, MEWSLIX_CANDIDATES)
    return [mentions, candidates]


def mewslix_pairs(path: Path) -> Rows:
    """``wikipedia_pairs-<split>.jsonl`` (English Wikipedia mention/entity pairs) as dual-encoder pairs: the
    mention in its sentence (`mention_text`) -> the entity's description (`entity_text`). A mention not inside
    one sentence is skipped."""
    out = []
    for i, rec in iter_jsonl(path):
        try:
            cm = rec["contextual_mention"]
            ctx = cm["context"]
            try:
                query = mention_text(ctx["text"], ctx["sentence_spans"], cm["mention"])
            except ValueError:
                continue
            out.append({"query": query, "candidate": entity_text(rec["entity"]), "candidate_context": None})
        except (KeyError, TypeError) as e:
            raise XitError(f"{path}:{i}: not a Mewsli-X wikipedia_pairs line ({type(e).__name__}: {e})") from None
    return out


MEWSLIX_PAIRS = {"train": "wikipedia_pairs-train.jsonl", "dev": "wikipedia_pairs-dev.jsonl"}


def _mewslix_pair_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    # data_files keys "pairs-train" / "pairs-dev": "dev" already names the WikiNews dev mentions.
    return [local_file(task, lang, f"pairs-{split}", source, MEWSLIX_PAIRS[split])]


def _mewslix_hub(task: Task, lang: str, split: str) -> Rows:
    raise XitError(
        "task 'mewslix' has no datasets source: Mewsli-X is rebuilt from WikiNews dumps by get-mewsli-x.sh "
        "(google-research/google-research, dense_representations_for_entity_retrieval/mel); point the spec's "
        "data: {mewslix: {data_dir: .../mewsli_x/output/dataset}} at its output"
    )


_task(
    "mewslix", "retrieval", MEWSLIX_LANGS, "map@20",
    "Mewsli-X, local files only (get-mewsli-x.sh output: wikinews_mentions-<split>.jsonl, "
    "candidate_set_entities.jsonl)",
    make_io(
        lambda lang: ("dev", "test"),
        _mewslix_files,
        lambda task, lang, split, files: mewslix_rows(files[0], files[1], lang),
        _mewslix_hub,
    ),
    retrieval="mewslix", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL), local_only=True,
    finetune=make_io(lambda lang: ("train", "dev"), _mewslix_pair_files,
                     lambda task, lang, split, files: mewslix_pairs(files[0]), _mewslix_hub),
    finetune_source="Mewsli-X wikipedia_pairs-{train,dev}.jsonl (get-mewsli-x.sh): mention -> entity description",
    # XTREME-R's scripts/train_mewslix.sh (mBERT): lr 2e-5, 2 epochs, batch 64 per GPU x 4 accumulation steps,
    # 64 tokens. batch_size 64 keeps the per-GPU batch (its in-batch negatives); the effective batch is 64,
    # not 256. Unlike LAReQA's default, which keeps the effective batch.
    finetune_defaults={"lr": 2e-5, "epochs": 2, "batch_size": 64, "max_query_length": 64, "max_length": 64,
                       "warmup_ratio": 0.0, "weight_decay": 0.0, "max_dev_examples": 2000},
)  # fmt: skip


# --------------------------------------------------------------------------- WikiANN-NER, XTREME-R languages

_task(
    "panx-r", "tagging", PANX_R_LANGS, "f1", "unimelb-nlp/wikiann (XTREME-R's 48 languages)", PANX_IO,
    labels=PANX_LABELS, defaults=dict(PANX_DEFAULTS),
)  # fmt: skip


# --------------------------------------------------------------------------- UD-POS, XTREME-R languages

# XTREME-R reads UD v2.7 only for the languages it adds; XTREME's 33 keep UD v2.5 (google-research/xtreme
# scripts/download_data.sh: download_udpos runs download_treebank "xtreme", v2.5 for XTREME's languages, then
# "xtreme-r", v2.7 for lt pl uk wo ro only, "to ensure backwards compatibility with the XTREME evaluation").
UD27_LANGS = ("lt", "pl", "uk", "wo", "ro")


def ud_version(lang: str) -> str:
    return "2.7" if lang in UD27_LANGS else "2.5"


def _udpos_r_splits(lang: str) -> tuple[str, ...]:
    if lang == "en":
        return ("train", "dev", "test")
    return ("test",) if lang in UDPOS_TEST_ONLY else ("dev", "test")


_task(
    "udpos-r", "tagging", UDPOS_R_LANGS, "f1",
    "UD v2.5 releases for XTREME's 33 languages, v2.7 for lt pl uk wo ro (as XTREME-R's download script), read "
    "as XTREME reads them on both paths; local: the unpacked ud-treebanks-v2.5/ and ud-treebanks-v2.7/",
    make_io(_udpos_r_splits, lambda task, lang, split, source: ud_files(task, lang, split, source, ud_version(lang)),
            udpos_parse, lambda task, lang, split: ud_release_rows(task, lang, split, ud_version(lang))),
    labels=UPOS_LABELS, defaults={**_CLS, "epochs": 10}, data_version="3",  # 3: v2.5 for XTREME's languages
)  # fmt: skip


# --------------------------------------------------------------------------- Tatoeba, XTREME-R languages


def _tatoeba_r_hub(task: Task, lang: str, split: str) -> Rows:
    if lang in TATOEBA_ISO3:
        return _tatoeba_hub(task, lang, split)
    # google/xtreme has XTREME's 36 languages only: read the same LASER files for the others.
    iso = TATOEBA_R_ISO3[lang]
    base = f"{LASER_TATOEBA_URL}/tatoeba.{iso}-eng"
    return parallel_rows(download(f"{base}.{iso}"), download(f"{base}.eng"))


tatoeba_task(
    "tatoeba-r", TATOEBA_R_ISO3,
    "google/xtreme:tatoeba.<iso3>; LASER Tatoeba v1 files for az lt pl uk ro (XTREME-R's 41 languages)",
    _tatoeba_r_hub, FAMILY,
)
