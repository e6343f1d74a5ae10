"""XTREME-R: LAReQA (XQuAD-R), Mewsli-X, the expanded language sets, mAP@k, and the `xtreme-r` target group.

Fixtures in the original formats (XQuAD-R JSON with ``sentence_breaks``, Mewsli-X JSONL as get-mewsli-x.sh
writes it, UD CoNLL-U, LASER Tatoeba text, WikiANN) are written by the tests and read by the production
loaders; the Hub / download paths are checked against stand-ins.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fakes import FakeDownloads, FakeHub

from xit.errors import XitError
from xit.plan import build_plan
from xit.retrieval import lareqa_scores, mewslix_scores, rank_top_k
from xit.spec import load_spec
from xit.tasks import DataSource, get_task, xtreme_r
from xit.tasks.registry import TARGET_GROUPS
from xit.tasks.xtreme import PANX_LANGS, TATOEBA_ISO3, UDPOS_NAMES

# --------------------------------------------------------------------------- AP@k / mAP@k by hand


def test_rank_top_k_orders_by_cosine_and_breaks_ties_like_the_official_argsort() -> None:
    cands = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cosines to [1, 0]: 1, 1, 0, .707
    # Equal similarities: the later candidate first (argsort()[::-1] of the official scripts).
    assert rank_top_k(np.array([[3.0, 0.0]]), cands, 20).tolist() == [[1, 0, 3, 2]]
    assert rank_top_k(np.array([[0.0, 1.0], [1.0, 0.0]]), cands, 2).tolist() == [[2, 3], [1, 0]]
    # A tie across the k-th place is broken by the same rule, not by whatever topk kept.
    same = np.tile([[1.0, 0.0]], (6, 1))
    assert rank_top_k(np.array([[1.0, 0.0]]), same, 2).tolist() == [[5, 4]]
    # Blocked computation gives the same rankings.
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(7, 5)), rng.normal(size=(11, 5))
    np.testing.assert_array_equal(rank_top_k(q, c, 4, block_elements=11), rank_top_k(q, c, 4))


# --------------------------------------------------------------------------- LAReQA (XQuAD-R)


def squad_r_paragraph(sentences: list[str], qas: list[tuple[str, str, str, int]], cover: int | None = None,
                      ) -> dict[str, Any]:
    """A paragraph in XQuAD-R's format: SQuAD fields plus `sentence_breaks` ([start, end] per sentence).

    ``qas``: (id, question, answer text, index of the sentence holding it); ``cover`` leaves the last
    sentences out of `sentence_breaks` (as a sentence-breaking error would).
    """
    context = " ".join(sentences)
    breaks, pos = [], 0
    for s in sentences:
        breaks.append([pos, pos + len(s)])
        pos += len(s) + 1
    out_qas = []
    for qid, question, answer, i in qas:
        start = breaks[i][0] + sentences[i].index(answer)
        out_qas.append({"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}]})
    return {"context": context, "sentence_breaks": breaks[:cover], "qas": out_qas}


XQUAD_R = {
    "en": [
        (["Ana lives in Porto.", "She paints houses.", "The sky is blue."],
         [("q1", "Where does Ana live?", "Porto", 0), ("q2", "What does she paint?", "houses", 1)], None),
        (["Ben sells bread.", "Ben sells bread.", "Carla sings."],
         [("q3", "What does Ben sell?", "bread", 1), ("q4", "Who sings?", "Carla", 2)], 2),
    ],
    "de": [
        (["Ana wohnt in Porto.", "Sie malt Häuser.", "Der Himmel ist blau."],
         [("q1", "Wo wohnt Ana?", "Porto", 0), ("q2", "Was malt sie?", "Häuser", 1)], None),
        (["Ben verkauft Brot.", "Ben verkauft Brot.", "Carla singt."],
         [("q3", "Was verkauft Ben?", "Brot", 1), ("q4", "Wer singt?", "Carla", 2)], 2),
    ],
}


def write_xquad_r(root: Path, layout: str = "xquad-r/{lang}.json") -> Path:
    for lang, paras in XQUAD_R.items():
        p = root / layout.format(lang=lang)
        p.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": "1.1", "data": [{"title": "T", "paragraphs": [squad_r_paragraph(*x) for x in paras]}]}
        p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return root


def test_lareqa_loader_builds_candidates_and_gold(tmp_path: Path) -> None:
    write_xquad_r(tmp_path)
    task, src = get_task("lareqa"), DataSource(data_dir=tmp_path)
    (row,) = task.load("en", "test", src)
    # q4's answer starts in a sentence missing from sentence_breaks: left out, as the official evaluation does.
    assert row["question_ids"] == ["q1", "q2", "q3"]
    assert row["questions"] == ["Where does Ana live?", "What does she paint?", "What does Ben sell?"]
    assert row["candidate_ids"] == ["en_1_0", "en_1_1", "en_1_2", "en_2_0", "en_2_1"]
    assert row["sentences"][:2] == ["Ana lives in Porto.", "She paints houses."]
    assert row["contexts"][0] == "Ana lives in Porto. She paints houses. The sky is blue."
    # Every sentence equal to the answer sentence is gold (the official string comparison).
    assert row["gold"] == [["q1", "en_1_0"], ["q2", "en_1_1"], ["q3", "en_2_0"], ["q3", "en_2_1"]]
    assert task.local_files("de", "test", src) == [tmp_path / "xquad-r" / "de.json"]
    # XTREME's download layout and a bare file work too; only the single "test" split exists.
    write_xquad_r(tmp_path / "x", "lareqa/xquad-r/{lang}.json")
    assert task.load("de", "test", DataSource(data_dir=tmp_path / "x"))[0]["question_ids"] == ["q1", "q2", "q3"]
    with pytest.raises(XitError, match="no split 'dev'"):
        task.load("en", "dev", src)


def test_lareqa_rejects_plain_xquad(tmp_path: Path) -> None:
    plain = {"data": [{"title": "T", "paragraphs": [{"context": "A b.", "qas": []}]}]}
    (tmp_path / "en.json").write_text(json.dumps(plain))
    with pytest.raises(XitError, match="sentence_breaks"):
        get_task("lareqa").load("en", "test", DataSource(data_dir=tmp_path))


def unit_rows(*rows: list[float]) -> np.ndarray:
    """Rows padded with one extra component that makes each a unit vector (cosines are the given components
    against the basis vectors)."""
    a = np.array(rows, dtype=np.float64)
    return np.hstack([a, np.sqrt(1 - (a**2).sum(axis=1, keepdims=True))])


def test_lareqa_predicting_the_gold_answers_scores_100(tmp_path: Path) -> None:
    write_xquad_r(tmp_path)
    task, src = get_task("lareqa"), DataSource(data_dir=tmp_path)
    rows = {lang: task.load(lang, "test", src)[0] for lang in ("en", "de")}
    qids = ["q1", "q2", "q3"]
    # Question x and every candidate answering x (in both languages) share basis vector x; the rest get their own.
    dim = len(qids) + 10
    questions = {lang: np.eye(dim)[[qids.index(q) for q in row["question_ids"]]] for lang, row in rows.items()}
    candidates = {}
    for lang, row in rows.items():
        gold = {cid: qid for qid, cid in row["gold"]}
        other = iter(range(len(qids), dim))
        candidates[lang] = np.eye(dim)[[qids.index(gold[c]) if c in gold else next(other)
                                        for c in row["candidate_ids"]]]
    scores = lareqa_scores(rows, questions, candidates)
    assert scores == {"en": {"map@20": 100.0, "n": 3}, "de": {"map@20": 100.0, "n": 3}}


def test_lareqa_map_at_20_by_hand() -> None:
    # One question "q" in two languages; its answers are a_en and a_de; x_en and y_de are distractors.
    rows = {
        "en": {"question_ids": ["q"], "candidate_ids": ["a_en", "x_en"], "gold": [["q", "a_en"]]},
        "de": {"question_ids": ["q"], "candidate_ids": ["a_de", "y_de"], "gold": [["q", "a_de"]]},
    }
    questions = {"en": np.eye(3)[[0]], "de": np.eye(3)[[1]]}
    # Cosines (to the en question, to the de question):
    #   a_en (.9, .3), x_en (.8, .5), a_de (.6, .2), y_de (.7, .6)
    cand = unit_rows([0.9, 0.3], [0.8, 0.5], [0.6, 0.2], [0.7, 0.6])
    candidates = {"en": cand[:2], "de": cand[2:]}
    # en ranks a_en, x_en, y_de, a_de: answers at 1 and 4 -> AP = (1/1 + 2/4) / 2 = .75
    # de ranks y_de, x_en, a_en, a_de: answers at 3 and 4 -> AP = (1/3 + 2/4) / 2 = 5/12
    scores = lareqa_scores(rows, questions, candidates)
    assert scores["en"] == {"map@20": pytest.approx(75.0), "n": 1}
    assert scores["de"] == {"map@20": pytest.approx(500 / 12), "n": 1}
    # At k = 3 the answer at rank 4 no longer counts: en (1/1)/2, de (1/3)/2.
    at3 = lareqa_scores(rows, questions, candidates, k=3)
    assert (at3["en"]["map@3"], at3["de"]["map@3"]) == (pytest.approx(50.0), pytest.approx(100 / 6))


def test_lareqa_production_path_reads_the_xquad_r_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_xquad_r(tmp_path)
    urls: list[str] = []

    def fake_download(url: str) -> Path:
        urls.append(url)
        return tmp_path / "xquad-r" / url.rsplit("/", 1)[1]

    monkeypatch.setattr(xtreme_r, "download", fake_download)
    (row,) = get_task("lareqa").load("de", "test")
    assert urls == ["https://github.com/google-research-datasets/lareqa/raw/master/xquad-r/de.json"]
    assert row["candidate_ids"][0] == "de_1_0" and row["question_ids"] == ["q1", "q2", "q3"]


# --------------------------------------------------------------------------- Mewsli-X


def _span(text: str, surface: str, nth: int = 0) -> dict[str, Any]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return {"start": start, "end": start + len(surface), "text": surface}


def _sentences(text: str, *sentences: str) -> list[dict[str, int]]:
    return [{"start": text.index(s), "end": text.index(s) + len(s)} for s in sentences]


EN_TEXT = "Ana Lima {the painter} visited Porto.\nShe liked it."
DE_TEXT = "Berlin, 3. Mai\nAna Lima malt in Berlin."
ENTITIES = [
    ("Q1", "Porto", "Porto is a city.\nIt is in Portugal.", ["Porto is a city.", "It is in Portugal."]),
    ("Q2", "Ana Lima", "Ana  Lima is a painter. She was born in 1990.", ["Ana  Lima is a painter."]),
    ("Q3", "Berlin", "Berlin is the capital of Germany.", ["Berlin is the capital of Germany."]),
    ("Q4", "Lima", "Lima is the capital of Peru.", ["Lima is the capital of Peru."]),
]


def mewslix_article(lang: str, text: str, sentences: list[str], mentions: list[tuple[str, str, str, int]]) -> dict:
    """One line of wikinews_mentions-<split>.jsonl: a ContextualMentions record (one article, its mentions)."""
    return {
        "context": {"document_title": f"{lang} news", "document_url": f"https://{lang}.wikinews.org/x",
                    "document_id": f"{lang}-doc", "language": lang, "text": text,
                    "sentence_spans": _sentences(text, *sentences)},
        "mentions": [{"example_id": ex, "entity_id": qid, "mention_span": _span(text, surface, nth)}
                     for ex, qid, surface, nth in mentions],
    }


def write_mewslix(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "candidate_set_entities.jsonl", "w", encoding="utf-8") as f:
        for qid, title, desc, sents in ENTITIES:
            f.write(json.dumps({"entity_id": qid, "title": title, "description": desc,
                                "sentence_spans": _sentences(desc, *sents), "description_language": "en",
                                "description_url": f"https://en.wikipedia.org/wiki/{title}"}) + "\n")
    articles = [
        mewslix_article("en", EN_TEXT, ["Ana Lima {the painter} visited Porto.", "She liked it."],
                        [("en-1", "Q2", "Ana Lima", 0), ("en-2", "Q1", "Porto", 0), ("en-3", "Q9", "She", 0)]),
        mewslix_article("de", DE_TEXT, ["Berlin, 3. Mai\nAna Lima malt in Berlin."], [("de-1", "Q3", "Berlin", 1)]),
    ]
    with open(root / "wikinews_mentions-test.jsonl", "w", encoding="utf-8") as f:
        for a in articles:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")
    return root


def test_mewslix_loader_builds_the_baseline_query_and_entity_strings(tmp_path: Path) -> None:
    write_mewslix(tmp_path)
    task, src = get_task("mewslix"), DataSource(data_dir=tmp_path)
    (en,) = task.load("en", "test", src)
    assert en["mention_ids"] == ["en-1", "en-2", "en-3"] and en["gold"] == ["Q2", "Q1", "Q9"]
    # The sentence holding the mention, braces already in it turned to parentheses, the mention marked with
    # braces and prepended; "  " -> " " once.
    assert en["mentions"] == [
        "Ana Lima: { Ana Lima } (the painter) visited Porto.",
        "Porto: Ana Lima (the painter) visited { Porto } .",
        "She: { She } liked it.",
    ]
    (de,) = task.load("de", "test", src)
    assert de["mentions"] == ["Berlin: Berlin, 3. Mai Ana Lima malt in { Berlin } ."]  # line break -> space
    assert en["candidate_ids"] == ["Q1", "Q2", "Q3", "Q4"]
    # Entities: the annotated sentences of the description, joined on one line ("Ana  Lima" has its
    # double space made single; the unannotated second sentence of Q2 is not used).
    assert en["candidates"][:2] == ["Porto is a city. It is in Portugal.", "Ana Lima is a painter."]
    assert de["candidates"] is en["candidates"]  # one parse for all languages
    assert task.local_files("de", "test", src) == [tmp_path / "wikinews_mentions-test.jsonl",
                                                   tmp_path / "candidate_set_entities.jsonl"]
    files = DataSource(data_files={"test": tmp_path / "wikinews_mentions-test.jsonl",
                                   "candidates": tmp_path / "candidate_set_entities.jsonl"})
    assert task.load("de", "test", files) == [de]


def test_mewslix_rejects_release_files_without_text_and_broken_spans(tmp_path: Path) -> None:
    task = get_task("mewslix")
    write_mewslix(tmp_path)
    no_text = mewslix_article("en", EN_TEXT, ["She liked it."], [("en-1", "Q2", "She", 0)])
    no_text["context"]["text"] = ""
    (tmp_path / "wikinews_mentions-dev.jsonl").write_text(json.dumps(no_text) + "\n")
    with pytest.raises(XitError, match="no_text"):
        task.load("en", "dev", DataSource(data_dir=tmp_path))
    across = mewslix_article("en", EN_TEXT, ["She liked it."], [("en-1", "Q1", "Porto.\nShe", 0)])
    (tmp_path / "wikinews_mentions-dev.jsonl").write_text(json.dumps(across) + "\n")
    with pytest.raises(XitError, match="not inside one sentence"):
        task.load("en", "dev", DataSource(data_dir=tmp_path))
    with pytest.raises(XitError, match="no datasets source.*get-mewsli-x.sh"):
        task.load("en", "test")


def test_mewslix_map_at_20_by_hand() -> None:
    ids = ["Q1", "Q2", "Q3", "Q4"]
    rows = {"en": {"gold": ["Q2", "Q1", "Q9"], "candidate_ids": ids}, "de": {"gold": ["Q3"], "candidate_ids": ids}}
    # Cosines of the entities to the mentions en-1, en-2, en-3, de-1 (the mentions are basis vectors):
    entities = unit_rows([0.1, 0.2, 0.1, 0.2],  # Q1
                         [0.4, 0.3, 0.1, 0.1],  # Q2
                         [0.2, 0.4, 0.1, 0.3],  # Q3
                         [0.3, 0.1, 0.1, 0.4])  # Q4
    mentions = {"en": np.eye(5)[[0, 1, 2]], "de": np.eye(5)[[3]]}
    # en-1: Q2 first -> 1. en-2: Q3, Q2, Q1 -> 1/3. en-3: its gold Q9 is not a candidate -> 0. de-1: Q4, Q3 -> 1/2.
    scores = mewslix_scores(rows, mentions, entities)
    assert scores["en"] == {"map@20": pytest.approx(100 * (1 + 1 / 3 + 0) / 3), "n": 3}
    assert scores["de"] == {"map@20": pytest.approx(50.0), "n": 1}
    assert mewslix_scores(rows, mentions, entities, k=2)["en"]["map@2"] == pytest.approx(100 / 3)  # 1/3 drops


# --------------------------------------------------------------------------- LAReQA and Mewsli-X through a sweep


SQUAD_TRAIN = [  # (paragraph, [(question, answer, answer_start)])
    ("Ana lives in Porto. She paints houses. The sky is blue.",
     [("Where does Ana live?", "Porto", 13), ("What does she paint?", "houses", 31)]),
    ("Ben sells bread. Carla sings songs.", [("What does Ben sell?", "bread", 10), ("Who sings?", "Carla", 17)]),
]  # fmt: skip


def write_squad(path: Path, paragraphs: list = SQUAD_TRAIN) -> Path:
    n = iter(range(10**6))
    doc = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": ctx, "qas": [{"id": f"s{next(n)}", "question": q, "answers": [{"text": a, "answer_start": i}]}
                                 for q, a, i in qas]} for ctx, qas in paragraphs]}]}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def wikipedia_pair(text: str, sentences: list[str], surface: str, entity: tuple) -> dict:
    qid, title, desc, sents = entity
    return {"contextual_mention": {
        "context": {"document_id": "d", "document_url": "u", "document_title": "t", "section_title": "",
                    "language": "en", "text": text, "sentence_spans": _sentences(text, *sentences)},
        "mention": {"example_id": f"w-{qid}", "entity_id": qid, "mention_span": _span(text, surface)}},
        "entity": {"entity_id": qid, "title": title, "description": desc, "description_language": "en",
                   "description_url": "u", "sentence_spans": _sentences(desc, *sents)}}  # fmt: skip


def write_wikipedia_pairs(root: Path) -> Path:
    lines = {
        "train": [wikipedia_pair("He flew to Porto. Then home.", ["He flew to Porto.", "Then home."], "Porto",
                                 ENTITIES[0]),
                  wikipedia_pair("Lima is warm.", ["Lima is warm."], "Lima", ENTITIES[3])],
        "dev": [wikipedia_pair("Berlin {DE} grows.", ["Berlin {DE} grows."], "Berlin", ENTITIES[2])],
    }
    for split, recs in lines.items():
        (root / f"wikipedia_pairs-{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


def test_sentence_spans_and_squad_pairs() -> None:
    t = 'Mr. Smith met J. Edgar Hoover in the U.S. in Jan. 1960. "Why?" he asked!  Then it ended'
    assert [t[a:b] for a, b in xtreme_r.sentence_spans(t)] == [
        "Mr. Smith met J. Edgar Hoover in the U.S. in Jan. 1960.", '"Why?" he asked!', "Then it ended"]
    assert xtreme_r.sentence_spans("  One. two. Three?  ") == [(2, 11), (12, 18)]  # "two" is lower case
    assert xtreme_r.sentence_spans("") == []
    ctx = "Ana lives in Porto. She paints houses."
    rows = [{"question": "Where?", "context": ctx, "answers": {"text": ["Porto"], "answer_start": [13]}},
            {"question": "What?", "context": ctx, "answers": {"text": ["houses", "h"], "answer_start": [31, 31]}},
            {"question": "Gap?", "context": ctx, "answers": {"text": [" "], "answer_start": [19]}},  # between
            {"question": "None?", "context": ctx, "answers": {"text": [], "answer_start": []}}]
    assert xtreme_r.squad_pairs(rows) == [
        {"query": "Where?", "candidate": "Ana lives in Porto.", "candidate_context": ctx},
        {"query": "What?", "candidate": "She paints houses.", "candidate_context": ctx},
    ]


def test_lareqa_and_mewslix_fine_tuning_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lareqa, mewslix = get_task("lareqa").dual_encoder(), get_task("mewslix").dual_encoder()
    assert (lareqa.format, lareqa.metric, lareqa.name, lareqa.languages) == ("dual_encoder", "mrr", "lareqa", ("en",))
    assert lareqa.defaults["max_query_length"] == 96 and lareqa.defaults["max_length"] == 256
    assert mewslix.defaults["max_length"] == 64 and mewslix.defaults["epochs"] == 2
    write_squad(tmp_path / "train-v1.1.json")
    write_squad(tmp_path / "dev-v1.1.json", SQUAD_TRAIN[1:])
    src = DataSource(data_dir=tmp_path)
    train = lareqa.load("en", "train", src)
    assert [(r["query"], r["candidate"]) for r in train] == [
        ("Where does Ana live?", "Ana lives in Porto."), ("What does she paint?", "She paints houses."),
        ("What does Ben sell?", "Ben sells bread."), ("Who sings?", "Carla sings songs.")]
    assert train[0]["candidate_context"] == SQUAD_TRAIN[0][0]
    assert len(lareqa.load("en", "dev", src)) == 2
    assert lareqa.local_files("en", "train", src) == [tmp_path / "train-v1.1.json"]
    # Production: SQuAD v1.1 from the Hub.
    qa = {"id": "h1", "title": "T", "context": "Ana lives in Porto. Bye.", "question": "Where?",
          "answers": {"text": ["Porto"], "answer_start": [13]}}
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", FakeHub({("rajpurkar/squad", "plain_text", "train"): [qa]}, set()))
    assert lareqa.load("en", "train") == [{"query": "Where?", "candidate": "Ana lives in Porto.",
                                           "candidate_context": "Ana lives in Porto. Bye."}]  # fmt: skip

    write_wikipedia_pairs(tmp_path)
    pairs = mewslix.load("en", "train", src)
    assert pairs == [
        {"query": "Porto: He flew to { Porto } .", "candidate": "Porto is a city. It is in Portugal.",
         "candidate_context": None},
        {"query": "Lima: { Lima } is warm.", "candidate": "Lima is the capital of Peru.", "candidate_context": None},
    ]
    assert mewslix.load("en", "dev", src)[0]["query"] == "Berlin: { Berlin } (DE) grows."
    other = DataSource(data_files={"pairs-train": tmp_path / "wikipedia_pairs-dev.jsonl"})
    assert mewslix.load("en", "train", other)[0]["candidate"].startswith("Berlin is the capital")
    with pytest.raises(XitError, match="has no datasets source"):
        mewslix.load("en", "train")
    (tmp_path / "bad.jsonl").write_text('{"entity": {}}\n')
    with pytest.raises(XitError, match=r"bad\.jsonl:1: not a Mewsli-X wikipedia_pairs line"):
        mewslix.load("en", "train", DataSource(data_files={"pairs-train": tmp_path / "bad.jsonl"}))


class FixedEncoder:
    """Stands in for XitModel in the dual-encoder format: each sequence's first token id picks the vector of
    every position (through `encode`, and through `encoder` as a Hugging Face model's hidden states)."""

    def __init__(self, table: dict[int, list[float]], scale: float = 100.0):
        from xit.formats.dual_encoder import Scale

        self.table, self.heads = table, {"t": Scale(scale)}

    def encode(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch

        vecs = [self.table[int(i)] for i in input_ids[:, 0]]
        return torch.tensor(vecs, dtype=torch.float32)[:, None, :].repeat(1, input_ids.shape[1], 1)

    def encoder(self, input_ids: Any, attention_mask: Any, output_hidden_states: bool) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(hidden_states=[self.encode(input_ids, attention_mask)])

    encoder.eval = lambda: None  # type: ignore[attr-defined]


def test_dual_encoder_in_batch_loss_and_ranks_by_hand() -> None:
    import torch

    from xit.formats import get_format

    fmt = get_format("dual_encoder")
    model = FixedEncoder({1: [1, 0], 2: [0, 1], 3: [1, 1], 4: [3, 4]}, scale=2.0)
    batch = {"input_ids": torch.tensor([[1, 9], [2, 9]]), "attention_mask": torch.ones(2, 2, dtype=torch.long),
             "c_input_ids": torch.tensor([[3, 9], [4, 9]]), "c_attention_mask": torch.ones(2, 2, dtype=torch.long)}
    loss, logits = fmt.forward(model, "t", batch)
    # cos(q1, c1) = 1/sqrt2, cos(q1, c2) = 3/5, cos(q2, c1) = 1/sqrt2, cos(q2, c2) = 4/5; logits = 2 x cos.
    r = 1 / np.sqrt(2)
    expected = np.array([[2 * r, 2 * 0.6], [2 * r, 2 * 0.8]])
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-6)
    ce = np.mean([-(expected[i, i] - np.log(np.exp(expected[i]).sum())) for i in range(2)])
    assert float(loss.detach()) == pytest.approx(ce, rel=1e-6)
    # Ranks: mrr of ranks 1, 2, 3 (a tie ranks the gold candidate last) = (1 + 1/2 + 1/3) / 3.
    assert fmt.score(None, [{}] * 3, [1, 2, 3]) == {"mrr": pytest.approx(100 * (1 + 1 / 2 + 1 / 3) / 3),
                                                   "accuracy": pytest.approx(100 / 3)}


class Tok:
    """A tokenizer whose ids are the first character's code point (what FixedEncoder reads)."""

    pad_token_id = 0

    def __call__(self, texts: list[str], pairs: list[str] | None = None, **kw: Any) -> dict[str, list]:
        ids = [[ord(t[0]), 5] + ([6] if pairs else []) for t in texts]
        return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}


def test_dual_encoder_predict_ranks_each_query_among_the_distinct_candidates() -> None:
    from xit.formats import get_format

    fmt = get_format("dual_encoder")
    model = FixedEncoder({ord("a"): [1, 0], ord("b"): [0, 1], ord("A"): [1, 0.1], ord("B"): [0.1, 1],
                          ord("C"): [1, 0.1]})
    rows = [{"query": "a", "candidate": "A"}, {"query": "b", "candidate": "B"},
            {"query": "a", "candidate": "C"}, {"query": "b", "candidate": "A"}]
    # Pool: A, B, C (A once). Query "a" = [1, 0]: A and C tie at the top, and a tie counts against the gold
    # candidate, so own A and own C both rank 2. Query "b": own B is first; own A ties with C below B: rank 3.
    ranks = fmt.predict(model, get_task("lareqa").dual_encoder(), rows, Tok(),
                        {"max_query_length": 8, "max_length": 8, "eval_batch_size": 2}, device="cpu")
    assert ranks == [2, 1, 2, 3]
    assert fmt.predict(model, None, [], Tok(), {}, device="cpu") == []


@pytest.mark.parametrize("fine_tune", [True, False])
@pytest.mark.parametrize("task", ["lareqa", "mewslix"])
@pytest.mark.slow  # a whole sweep (or several stages) through the local runner
def test_retrieval_stage_scores_every_language(tmp_path: Path, task: str, fine_tune: bool) -> None:
    from xit.argo import branches
    from xit.runner import run_sweep
    from xit.stage import read_metrics
    from xit.store import LocalStore

    if task == "lareqa":
        data = write_xquad_r(tmp_path / "data")
        write_squad(data / "train-v1.1.json")
        write_squad(data / "dev-v1.1.json", SQUAD_TRAIN[1:])
    else:
        data = write_wikipedia_pairs(write_mewslix(tmp_path / "data"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "xr", "targets": [task], "languages": {task: ["de", "en"]},
                                    "data": {task: {"data_dir": str(data)}}, "retrieval": {"fine_tune": fine_tune},
                                    "hparams": {"target": {"epochs": 1}}}))
    store = LocalStore(tmp_path / "store")
    run_sweep(load_spec(spec), store, tmp_path / "out", show_progress=False)
    rows = list(csv.DictReader(open(tmp_path / "out" / "per_language.csv")))
    assert [(r["target"], r["language"], r["metric"]) for r in rows] == [(task, "de", "map@20"),
                                                                          (task, "en", "map@20")]
    assert all(0.0 <= float(r["score"]) <= 100.0 for r in rows)
    plan = build_plan(load_spec(spec))
    (stage,) = plan.by_kind("retrieval")
    m = read_metrics(store, stage.key)
    assert {lang: v["n"] for lang, v in m["languages"].items()} == ({"de": 3, "en": 3} if task == "lareqa"
                                                                    else {"de": 1, "en": 3})
    assert m["score"] == pytest.approx(np.mean([v["map@20"] for v in m["languages"].values()]))
    targets = plan.by_kind("target")
    if not fine_tune:
        assert targets == [] and stage.inputs == [plan.by_kind("intermediate")[0].key]
        assert stage.params["retrieval"]["pooling"] == "mean"
        return
    # XTREME-R: a dual encoder is fine-tuned from the encoder, and retrieval runs on it (CLS, last layer).
    (target,) = targets
    assert stage.inputs == [target.key] and target.params["dual_encoder"] is True
    r = stage.params["retrieval"]
    assert (r["pooling"], r["layer"]) == ("cls", -1)
    assert (r["max_query_length"], r["max_length"]) == ((96, 256) if task == "lareqa" else (64, 64))
    trained = read_metrics(store, target.key)
    # Trained on the pairs, the checkpoint selected on English dev MRR.
    assert trained["task"] == task and trained["loss"] and set(trained["best"]["metrics"][task]) == {"mrr", "accuracy"}
    # On a cluster the retrieval stage follows its target like an evaluate stage.
    (branch,) = branches(plan)
    assert branch["targets"] == [{"target": target.key, "evaluate": stage.key, "scorer": "retrieval",
                                  "evaluate_also": []}]
    assert branch["retrieval"] == []
    # The dual-encoder pairs are checked before anything runs.
    (data / ("dev-v1.1.json" if task == "lareqa" else "wikipedia_pairs-dev.jsonl")).unlink()
    with pytest.raises(XitError, match=r"(dev-v1\.1\.json|wikipedia_pairs-dev\.jsonl) .*dual-encoder.*"
                                       r"retrieval\.fine_tune: false"):
        load_spec(spec)


# --------------------------------------------------------------------------- XTREME-R language sets


def test_registered_xtreme_r_tasks() -> None:
    expect = {  # name: (format, n languages, metric, retrieval kind)
        "lareqa": ("retrieval", 11, "map@20", "lareqa"),
        "mewslix": ("retrieval", 11, "map@20", "mewslix"),
        "panx-r": ("tagging", 48, "f1", None),
        "udpos-r": ("tagging", 38, "f1", None),
        "tatoeba-r": ("retrieval", 41, "accuracy", "tatoeba"),
    }
    for name, (fmt, n, metric, kind) in expect.items():
        t = get_task(name)
        assert (t.family, t.format, len(t.languages), t.metric, t.retrieval, t.eval_split) == (
            "xtreme-r", fmt, n, metric, kind, "test"), name
        assert len(set(t.languages)) == n and t.local_files_fn is not None, name
        assert t.roles == (frozenset({"target"}) if fmt == "retrieval" else frozenset({"intermediate", "target"}))
    assert set(get_task("lareqa").languages) == set("ar de el en es hi ru th tr vi zh".split())
    assert set(get_task("mewslix").languages) == set("ar de en es fa ja pl ro ta tr uk".split())
    assert set(get_task("panx-r").languages) - set(PANX_LANGS) == set("qu pl uk az lt pa gu ro".split())
    assert set(get_task("udpos-r").languages) - set(UDPOS_NAMES) == set("lt pl uk wo ro".split())
    assert set(get_task("tatoeba-r").languages) - set(TATOEBA_ISO3) == set("az lt pl uk ro".split())
    assert [xtreme_r.TATOEBA_R_ISO3[x] for x in ("az", "lt", "pl", "uk", "ro")] == ["aze", "lit", "pol", "ukr", "ron"]
    assert get_task("panx-r").labels == get_task("panx").labels and get_task("udpos-r").labels == get_task(
        "udpos").labels
    # UD v2.7 only for the five new languages; XTREME's 33 keep v2.5 (download_data.sh, download_treebank).
    assert set(xtreme_r.UD27_LANGS) == set(get_task("udpos-r").languages) - set(UDPOS_NAMES)
    assert {xtreme_r.ud_version(x) for x in UDPOS_NAMES} == {"2.5"}
    # XQuAD keeps its 11 XTREME languages in XTREME-R.
    assert len(get_task("xquad").languages) == 11


WIKIANN_PL = "pl:Ana\tB-PER\npl:Lima\tI-PER\npl:w\tO\npl:Krakowie\tB-LOC\n\npl:Tak\tO\n"


def conllu(*sentences: list[tuple[str, str]]) -> str:
    out = []
    for s in sentences:
        out += [f"{i}\t{form}\t_\t{upos}\t_\t_\t0\troot\t_\t_" for i, (form, upos) in enumerate(s, 1)] + [""]
    return "\n".join(out) + "\n"


def test_expanded_tasks_read_their_new_languages_locally(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "test").write_text(WIKIANN_PL)
    assert get_task("panx-r").load("pl", "test", DataSource(data_dir=tmp_path)) == [
        {"tokens": ["Ana", "Lima", "w", "Krakowie"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]},
        {"tokens": ["Tak"], "tags": ["O"]},
    ]
    ud = tmp_path / "ud-treebanks-v2.7"
    for tb, text in {
        "UD_Polish-PDB/pl_pdb-ud-test.conllu": conllu([("Ala", "PROPN"), ("ma", "VERB"), ("kota", "NOUN")]),
        "UD_Polish-LFG/pl_lfg-ud-test.conllu": conllu([("Tak", "PART"), ("_", "PUNCT")]),
        # Released without word forms: dropped by XTREME's rule (all words, or all but one, are "_").
        "UD_Polish-PUD/pl_pud-ud-test.conllu": conllu([("_", "NOUN"), ("_", "VERB"), ("_", "PUNCT")],
                                                      [("Nie", "PART"), ("_", "VERB"), ("!", "PUNCT")]),
    }.items():
        (ud / tb).parent.mkdir(parents=True, exist_ok=True)
        (ud / tb).write_text(text)
    rows = get_task("udpos-r").load("pl", "test", DataSource(data_dir=ud))
    assert rows == [  # treebanks in file-name order: lfg, pdb, pud
        {"tokens": ["Ala", "ma", "kota"], "tags": ["PROPN", "VERB", "NOUN"]},
        {"tokens": ["Nie", "_", "!"], "tags": ["PART", "VERB", "PUNCT"]},
    ]  # "Tak _" (1 of 2 words empty) and the all-"_" sentence are dropped
    (tmp_path / "tatoeba.pol-eng.pol").write_text("Ala ma kota.\nTak.\n")
    (tmp_path / "tatoeba.pol-eng.eng").write_text("Ala has a cat.\nYes.\n")
    assert get_task("tatoeba-r").load("pl", "test", DataSource(data_dir=tmp_path)) == [
        {"source": ["Ala ma kota.", "Tak."], "target": ["Ala has a cat.", "Yes."]}]
    with pytest.raises(XitError, match="has no language 'pl'"):
        get_task("tatoeba").load("pl", "test", DataSource(data_dir=tmp_path))


def write_ud(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_udpos_r_reads_v25_for_xtremes_languages_and_v27_for_the_new_ones(tmp_path: Path) -> None:
    """The two releases unpacked side by side, as download_treebank leaves them: de from v2.5, pl from v2.7."""
    for version in ("2.5", "2.7"):
        write_ud(tmp_path / f"ud-treebanks-v{version}", "UD_German-GSD/de_gsd-ud-test.conllu",
                 conllu([("Ja", "INTJ"), (version, "NUM")]))
    write_ud(tmp_path / "ud-treebanks-v2.7", "UD_Polish-PDB/pl_pdb-ud-test.conllu", conllu([("Tak", "PART")]))
    src = DataSource(data_dir=tmp_path)
    assert get_task("udpos-r").load("de", "test", src) == [{"tokens": ["Ja", "2.5"], "tags": ["INTJ", "NUM"]}]
    assert get_task("udpos").load("de", "test", src) == [{"tokens": ["Ja", "2.5"], "tags": ["INTJ", "NUM"]}]
    assert get_task("udpos-r").load("pl", "test", src) == [{"tokens": ["Tak"], "tags": ["PART"]}]
    assert get_task("udpos-r").local_files("pl", "test", src) == [
        tmp_path / "ud-treebanks-v2.7/UD_Polish-PDB/pl_pdb-ud-test.conllu"]
    with pytest.raises(XitError, match=r"is not UD v2\.5.*ud-treebanks-v2\.5/"):  # v2.7 given for German
        get_task("udpos-r").load("de", "test", DataSource(data_dir=tmp_path / "ud-treebanks-v2.7"))


def test_expanded_tasks_read_the_real_samples_like_their_xtreme_versions(shared_data: Path) -> None:
    """On XTREME's languages the XTREME-R variants read the same files into the same rows (real samples)."""
    ud, tatoeba = DataSource(data_dir=shared_data / "ud"), DataSource(data_dir=shared_data / "tatoeba")
    for lang in ("de", "fi", "ja"):
        rows = get_task("udpos-r").load(lang, "dev", ud)
        assert rows and rows == get_task("udpos").load(lang, "dev", ud), lang
    for lang in ("de", "kk", "sw"):
        rows = get_task("tatoeba-r").load(lang, "test", tatoeba)
        assert rows == get_task("tatoeba").load(lang, "test", tatoeba) and len(rows[0]["source"]) > 100, lang


def test_expanded_tasks_production_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    hub = FakeHub({
        ("unimelb-nlp/wikiann", "qu", "test"): [{"tokens": ["Lima"], "ner_tags": [5]}],
        ("google/xtreme", "tatoeba.deu", "validation"): [
            {"source_sentence": "Hallo.\n", "target_sentence": "Hello.\n", "source_lang": "deu", "target_lang": "eng"}],
    }, scripted=set())
    monkeypatch.setattr(datasets, "load_dataset", hub)
    # The UD releases, as archives unpack: v2.5 and v2.7 each hold a German treebank, only v2.7 a Wolof one.
    releases = {"1-3105/ud-treebanks-v2.5.tgz": "v25", "1-3424/ud-treebanks-v2.7.tgz": "v27"}
    for folder, version in (("v25", "2.5"), ("v27", "2.7")):
        write_ud(tmp_path / folder / f"ud-treebanks-v{version}", "UD_German-GSD/de_gsd-ud-dev.conllu",
                 conllu([("Ja", "INTJ"), (version, "NUM")]))
    write_ud(tmp_path / "v27/ud-treebanks-v2.7", "UD_Wolof-WTB/wo_wtb-ud-test.conllu",
             conllu([("Maa", "PRON"), ("ko", "AUX"), ("dem", "VERB")]))

    monkeypatch.setattr(datasets, "DownloadManager",
                        FakeDownloads(lambda url: tmp_path / releases[url.split("handle/11234/")[1]]))
    assert get_task("panx-r").load("qu", "test") == [{"tokens": ["Lima"], "tags": ["B-LOC"]}]
    assert get_task("udpos-r").load("wo", "test") == [{"tokens": ["Maa", "ko", "dem"], "tags": ["PRON", "AUX", "VERB"]}]
    # XTREME's languages keep UD v2.5 in XTREME-R.
    assert get_task("udpos-r").load("de", "dev") == [{"tokens": ["Ja", "2.5"], "tags": ["INTJ", "NUM"]}]
    assert get_task("tatoeba-r").load("de", "test") == [{"source": ["Hallo."], "target": ["Hello."]}]

    (tmp_path / "tatoeba.ukr-eng.ukr").write_text("Так.\n")
    (tmp_path / "tatoeba.ukr-eng.eng").write_text("Yes.\n")
    urls: list[str] = []
    monkeypatch.setattr(xtreme_r, "download", lambda url: urls.append(url) or tmp_path / url.rsplit("/", 1)[1])
    assert get_task("tatoeba-r").load("uk", "test") == [{"source": ["Так."], "target": ["Yes."]}]
    base = "https://raw.githubusercontent.com/facebookresearch/LASER/master/data/tatoeba/v1/tatoeba.ukr-eng"
    assert urls == [f"{base}.ukr", f"{base}.eng"]


# --------------------------------------------------------------------------- the xtreme-r target group


def test_xtreme_r_target_group_plans_all_ten_tasks_in_all_their_languages(tmp_path: Path) -> None:
    ten = ["xnli", "xcopa", "udpos-r", "panx-r", "xquad", "mlqa", "tydiqa", "tatoeba-r", "mewslix", "lareqa"]
    assert list(TARGET_GROUPS["xtreme-r"]) == ten
    assert not {"pawsx", "bucc"} & set(TARGET_GROUPS["xtreme-r"])
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\nmodel: xlm-roberta-large\nintermediate: [[], [squad]]\ntargets: [xtreme-r, xquad]\n")
    # Mewsli-X has no public source: the group needs its local files, and says so before anything runs.
    with pytest.raises(XitError, match=r"field 'data\.mewslix': task 'mewslix' has no public source"):
        load_spec(spec)
    with open(spec, "a") as f:
        f.write(f"data: {{mewslix: {{data_dir: {write_wikipedia_pairs(write_mewslix(tmp_path / 'mewsli'))}}}}}\n")
    plan = build_plan(load_spec(spec))
    assert plan.spec["targets"] == ten
    scored = [s for s in plan.stages if s.kind in ("evaluate", "retrieval") and "[squad]" in s.label]
    assert sorted(s.params["task"] for s in scored) == sorted(ten)
    assert {s.params["task"] for s in scored if s.kind == "retrieval"} == {"tatoeba-r", "mewslix", "lareqa"}
    # LAReQA and Mewsli-X fine-tune a dual encoder first (XTREME-R's baselines); the rest train as usual.
    dual = {s.params["task"] for s in plan.by_kind("target") if s.params.get("dual_encoder")}
    assert dual == {"mewslix", "lareqa"}
    langs = {s.params["task"]: len(s.params["languages"]) for s in scored}
    assert langs == {"xnli": 15, "xcopa": 11, "udpos-r": 38, "panx-r": 48, "xquad": 11, "mlqa": 7, "tydiqa": 9,
                     "tatoeba-r": 41, "mewslix": 11, "lareqa": 11}
    # Both benchmarks in one sweep: the shared tasks are planned once.
    spec.write_text("name: x\nmodel: xlm-roberta-large\ntargets: [xtreme, xtreme-r]\n"
                    f"data: {{mewslix: {{data_dir: {tmp_path / 'mewsli'}}}}}\n")
    targets = build_plan(load_spec(spec)).spec["targets"]
    assert len(targets) == len(set(targets)) == 9 + 10 - 4


def test_cli_tasks_lists_the_xtreme_r_tasks() -> None:
    proc = subprocess.run([sys.executable, "-m", "xit.cli", "tasks", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = {t["name"]: t for t in json.loads(proc.stdout)}
    for name, n, metric in [("lareqa", 11, "map@20"), ("mewslix", 11, "map@20"), ("panx-r", 48, "f1"),
                            ("udpos-r", 38, "f1"), ("tatoeba-r", 41, "accuracy")]:
        assert listed[name]["family"] == "xtreme-r" and listed[name]["metric"] == metric, name
        assert len(listed[name]["languages"]) == n, name
    assert "SQuAD v1.1" in listed["lareqa"]["fine_tuning"] and "wikipedia_pairs" in listed["mewslix"]["fine_tuning"]
    assert listed["mewslix"]["local_only"] and listed["panx-r"]["fine_tuning"] is None
    assert listed["ccg"]["local_only"] and listed["ccg"]["labels"] == [] and "425" in listed["ccg"]["labels_note"]
    assert listed["panx-r"]["labels"][:3] == ["O", "B-PER", "I-PER"] and listed["panx-r"]["labels_note"] is None
    proc = subprocess.run([sys.executable, "-m", "xit.cli", "tasks", "--family", "xtreme-r"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    assert all(name in proc.stdout for name in ("lareqa", "mewslix", "panx-r", "udpos-r", "tatoeba-r"))
    assert "map@20" in proc.stdout
