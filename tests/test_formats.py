"""Formats: featurisation, decoding and scoring round trips with the built-in tiny tokenizer/model.

Logits are constructed from the gold answers through the featurisation ("predict gold"), so decode
must give back the gold and every headline metric must be 100; imperfect cases are hand-computed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xit.encoding import collate
from xit.formats import Classification, MultipleChoice, SpanQA, Tagging, get_format
from xit.modeling import new_model
from xit.tasks.registry import Task, get_task

HIGH, LOW = 10.0, -10.0
QA_HP = {"max_length": 64, "doc_stride": 16, "n_best": 20, "max_answer_length": 30}


@pytest.fixture
def squad() -> Task:
    """A registered SQuAD v1.1-scored span-QA task (every answerable, SQuAD normalisation)."""
    return get_task("squad")


def one_hot_logits(index: int, size: int) -> np.ndarray:
    lg = np.full(size, LOW, dtype=np.float32)
    lg[index] = HIGH
    return lg


# --------------------------------------------------------------------------- span QA round trip

# Several windows at max_length 64 / doc_stride 16; non-ASCII words (some unknown to the tiny BPE
# vocabulary: <unk> tokens) and runs of two spaces.
QA_CONTEXT = " ".join([
    "Ana Lima lives in  Porto.",
    "Ben has a green  river and a golden lantern.",
    "Carla works in Kigali near the quiet garden.",
    "Dario painted the heavy window in Tartu.",
    "Elif Okafor sold the Café Müller basket in Oslo.",
    "Farid found a wooden ladder in Lyon.",
    "Greta washed the yellow pillow and candle near Quito.",
    "Hugo and Ben borrowed the broken violin and the kettle in  Pune.",
    "Ines moved the narrow carpet to Hanoi.",
    "Jonas cleaned the bright kettle in Cusco.",
    "Kemal opened the small pocket in Riga.",
    "Lina carried the golden saddle to Zürich Straße",
])
# The answers of the QA rows (the middle ones lie in the overlap of two windows of QA_HP)
QA_ANSWERS = [
    "Ana Lima",  # the very first characters of the context
    "green  river",  # two spaces inside the answer
    "Café Müller basket",  # non-ASCII, in the overlap of windows 0 and 1
    "the kettle in  Pune",  # two spaces
    "narrow carpet to Hanoi",  # in the overlap of windows 1 and 2
    "Zürich Straße",  # ends at the last character of the context
]


def qa_rows() -> list[dict[str, Any]]:
    rows = []
    for i, text in enumerate(QA_ANSWERS):
        start = QA_CONTEXT.index(text)
        assert QA_CONTEXT.count(text) == 1
        rows.append({"id": f"q{i}", "context": QA_CONTEXT, "question": "  who sold it ?",
                     "answers": {"text": [text], "answer_start": [start]}})
    assert rows[-1]["answers"]["answer_start"][0] + len("Zürich Straße") == len(QA_CONTEXT)
    return rows


def span_text(row: dict, offsets: list, s: int, e: int) -> str:
    return row["context"][offsets[s][0] : offsets[e][1]].strip()


def qa_perfect_logits(train_feats: list[dict]) -> list[np.ndarray]:
    out = []
    for f in train_feats:
        lg = np.full((len(f["input_ids"]), 2), LOW, dtype=np.float32)
        if (f["start_positions"], f["end_positions"]) != (0, 0):
            lg[f["start_positions"], 0] = HIGH
            lg[f["end_positions"], 1] = HIGH
        out.append(lg)
    return out


def test_qa_featurize_round_trip(tiny_tokenizer: Any, squad: Task) -> None:
    rows = qa_rows()
    fmt = SpanQA()
    evals = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False)
    windows = [context_span(f) for f in evals if f["_row"] == 0]
    assert len(windows) == 3  # several windows, about [0, 220), [177, 415), [340, 529) in characters
    # An answer that begins at the first token of the last window (where it starts depends on the tokenizer).
    first = windows[-1][0]
    text = QA_CONTEXT[first : QA_CONTEXT.index(" ", QA_CONTEXT.index(" ", first + 1) + 1)].strip()
    rows.append({"id": "q-window-start", "context": QA_CONTEXT, "question": "  who sold it ?",
                 "answers": {"text": [text], "answer_start": [first]}})
    train = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False)
    assert len(train) == len(evals)
    assert all(len(f["input_ids"]) <= QA_HP["max_length"] for f in train)
    containing = dict.fromkeys(range(len(rows)), 0)
    starts_window = False
    for tf, ef in zip(train, evals, strict=True):
        assert tf["input_ids"] == ef["input_ids"]
        row = rows[ef["_row"]]
        s, e = tf["start_positions"], tf["end_positions"]
        ctx_tokens = [i for i, o in enumerate(ef["_offsets"]) if o is not None]
        lo, hi = context_span(ef)
        a_start = row["answers"]["answer_start"][0]
        inside = lo <= a_start and a_start + len(row["answers"]["text"][0]) <= hi
        if (s, e) == (0, 0):
            assert not inside
            continue
        assert inside
        containing[ef["_row"]] += 1
        starts_window |= row["id"] == "q-window-start" and s == ctx_tokens[0]
        assert ef["_offsets"][s] is not None and ef["_offsets"][e] is not None
        assert s <= e
        assert span_text(row, ef["_offsets"], s, e) == row["answers"]["text"][0]
    # Every answer is labelled in each window that holds it whole, and only there; the context is written so
    # that some answers lie in the overlap of two windows.
    held = [sum(lo <= r["answers"]["answer_start"][0] and r["answers"]["answer_start"][0] + len(r["answers"]["text"][0])
                <= hi for lo, hi in windows) for r in rows]
    assert list(containing.values()) == held
    assert held[: len(QA_ANSWERS)].count(2) >= 2 and min(held) == 1
    assert starts_window


def context_span(feature: dict) -> tuple[int, int]:
    """The characters of the context a featurised window covers."""
    offsets = [o for o in feature["_offsets"] if o is not None]
    return offsets[0][0], offsets[-1][1]


def test_qa_round_trip_nfkc_normalised_text(tiny_tokenizer: Any, squad: Task) -> None:
    # The tiny tokenizer normalises with NFKC: a ligature and full-width letters change length;
    # offsets must still point into the original text.
    ctx = "Ana lives in ﬁne Ｐｏｒｔｏ now. Ben saw 東京 today.  Zeno  met   Ｒｉｇａ"
    answers = ["ﬁne Ｐｏｒｔｏ", "東京", "Zeno  met   Ｒｉｇａ", "Ｒｉｇａ"]
    rows = [{"id": str(i), "context": ctx, "question": "who ?",
             "answers": {"text": [a], "answer_start": [ctx.index(a)]}} for i, a in enumerate(answers)]
    fmt = SpanQA()
    train = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False)
    assert len(train) == len(rows)  # one window each
    for tf, ef, a in zip(train, evals, answers, strict=True):
        assert tf["start_positions"] > 0
        assert span_text(rows[ef["_row"]], ef["_offsets"], tf["start_positions"], tf["end_positions"]) == a
    assert fmt.decode(squad, rows, evals, qa_perfect_logits(train), QA_HP) == answers


def test_qa_decode_perfect_logits(tiny_tokenizer: Any, squad: Task) -> None:
    rows = qa_rows()
    fmt = SpanQA()
    train = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False)
    preds = fmt.decode(squad, rows, evals, qa_perfect_logits(train), QA_HP)
    assert preds == list(QA_ANSWERS)
    assert [fmt.gold(squad, r) for r in rows] == preds
    scores = fmt.score(squad, rows, preds)
    assert scores == {"em": 100.0, "f1": 100.0, "em_f1": 100.0}


def token_at(offsets: list, char: int) -> int:
    return next(i for i, o in enumerate(offsets) if o is not None and o[0] <= char < o[1])


def test_qa_decode_wrong_span_partial_f1(tiny_tokenizer: Any, squad: Task) -> None:
    rows = qa_rows()
    fmt = SpanQA()
    train = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False)
    logits = qa_perfect_logits(train)
    # Row 2 (gold "Café Müller basket"): point window 0 at "Müller basket in Oslo" instead.
    wrong = "Müller basket in Oslo"
    w = next(i for i, f in enumerate(evals) if f["_row"] == 2)
    offsets = evals[w]["_offsets"]
    a = QA_CONTEXT.index(wrong)
    s, e = token_at(offsets, a), token_at(offsets, a + len(wrong) - 1)
    for i, f in enumerate(evals):
        if f["_row"] == 2:
            logits[i][:] = LOW
    logits[w][s, 0] = logits[w][e, 1] = HIGH
    preds = fmt.decode(squad, rows, evals, logits, QA_HP)
    assert preds[2] == wrong
    assert preds[:2] + preds[3:] == [t for i, t in enumerate(QA_ANSWERS) if i != 2]
    # normalised gold: "café müller basket" (3 tokens); prediction: "müller basket in oslo" (4);
    # common 2 -> P = 2/4, R = 2/3, F1 = 2 * (1/2) * (2/3) / (1/2 + 2/3) = 4/7.
    one = fmt.score(squad, rows[2:3], preds[2:3])
    assert one["em"] == 0.0
    assert one["f1"] == pytest.approx(400 / 7)
    assert one["em_f1"] == pytest.approx(200 / 7)
    # all six rows: 5 perfect + this one -> EM 5/6, F1 (5 + 4/7) / 6.
    allrows = fmt.score(squad, rows, preds)
    assert allrows["em"] == pytest.approx(500 / 6)
    assert allrows["f1"] == pytest.approx(100 * (5 + 4 / 7) / 6)


def test_qa_answer_span_beyond_window_points_at_cls(tiny_tokenizer: Any, squad: Task) -> None:
    # An answer spanning more than one window fits in none: every window points at (0, 0).
    text = QA_CONTEXT[: QA_CONTEXT.index("Greta")].strip()
    row = {"id": "long", "context": QA_CONTEXT, "question": "who sold it ?",
           "answers": {"text": [text], "answer_start": [0]}}
    feats = SpanQA().featurize([row], tiny_tokenizer, squad, QA_HP, train=True)
    assert len(feats) == 3
    assert [(f["start_positions"], f["end_positions"]) for f in feats] == [(0, 0)] * 3


# --------------------------------------------------------------------------- predict gold, per format

DEMO_HP = {"max_length": 64, "doc_stride": 24, "n_best": 20, "max_answer_length": 30}
N_ROWS = 40


def demo_rows(task_name: str, lang: str = "en") -> tuple[Any, list[dict]]:
    task = get_task(task_name)
    return task, task.load(lang, "test")[:N_ROWS]


def classification_logits(task: Any, rows: list[dict], preds: list[int]) -> list[np.ndarray]:
    return [one_hot_logits(p, len(task.labels)) for p in preds]


@pytest.mark.parametrize("lang", ["en", "fus"])
def test_classification_predict_gold(tiny_tokenizer: Any, lang: str) -> None:
    task, rows = demo_rows("demo-para", lang)
    fmt = get_format(task.format)
    assert isinstance(fmt, Classification)
    feats = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=True)
    assert len(feats) == len(rows)
    assert [f["labels"] for f in feats] == [r["label"] for r in rows]
    assert {f["labels"] for f in feats} == {0, 1}
    # text_a and text_b are both encoded: <s> A </s></s> B </s>
    assert all(f["input_ids"].count(tiny_tokenizer.sep_token_id) == 3 for f in feats)
    logits = classification_logits(task, rows, [f["labels"] for f in feats])
    preds = fmt.decode(task, rows, feats, logits, DEMO_HP)
    assert preds == [fmt.gold(task, r) for r in rows]
    assert fmt.score(task, rows, preds)[task.metric] == 100.0


def test_classification_imperfect(tiny_tokenizer: Any) -> None:
    task, rows = demo_rows("demo-nli")
    fmt = get_format(task.format)
    gold = [fmt.gold(task, r) for r in rows]
    # 6 of 40 predictions shifted to another label -> accuracy 34/40 = 85
    preds_in = [(g + 1) % 3 if i % 7 == 0 else g for i, g in enumerate(gold)]
    assert sum(p != g for p, g in zip(preds_in, gold, strict=True)) == 6
    feats = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=False)
    preds = fmt.decode(task, rows, feats, classification_logits(task, rows, preds_in), DEMO_HP)
    assert preds == preds_in
    assert fmt.score(task, rows, preds) == {"accuracy": 85.0}


def test_multiple_choice_predict_gold(tiny_tokenizer: Any) -> None:
    task, rows = demo_rows("demo-mc")
    fmt = get_format(task.format)
    assert isinstance(fmt, MultipleChoice)
    feats = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=True)
    assert len(feats) == len(rows)
    for f, r in zip(feats, rows, strict=True):
        assert len(f["input_ids"]) == len(r["choices"]) == task.num_choices
        assert len(f["attention_mask"]) == len(r["choices"])
        assert f["labels"] == r["label"]
    logits = [one_hot_logits(f["labels"], task.num_choices) for f in feats]
    preds = fmt.decode(task, rows, feats, logits, DEMO_HP)
    assert preds == [fmt.gold(task, r) for r in rows]
    assert fmt.score(task, rows, preds)[task.metric] == 100.0
    # imperfect: 2 of 40 wrong -> 95
    wrong = [(f["labels"] + 1) % 4 if i in (3, 17) else f["labels"] for i, f in enumerate(feats)]
    preds = fmt.decode(task, rows, feats, [one_hot_logits(p, 4) for p in wrong], DEMO_HP)
    assert preds == wrong
    assert fmt.score(task, rows, preds) == {"accuracy": 95.0}


def test_multiple_choice_decode_ignores_padded_choices() -> None:
    # A row with 2 choices padded to 4 in its batch: a high score on a padded slot is never picked.
    rows = [{"context": "c", "question": "", "choices": ["a", "b"], "label": 1}]
    lg = np.array([0.0, 1.0, 50.0, 50.0], dtype=np.float32)
    assert MultipleChoice().decode(None, rows, [{}], [lg], {}) == [1]


def tagging_logits(task: Any, train_feats: list[dict], pred_tags: list[list[str]] | None = None,
                   eval_feats: list[dict] | None = None) -> list[np.ndarray]:
    """One-hot at the gold label (or at `pred_tags`) on first subwords; elsewhere a decoy label."""
    n = len(task.labels)
    decoy = task.labels.index("I-LOC")
    out = []
    for i, f in enumerate(train_feats):
        lg = np.tile(one_hot_logits(decoy, n), (len(f["input_ids"]), 1))
        if pred_tags is None:
            for j, lab in enumerate(f["labels"]):
                if lab != -100:
                    lg[j] = one_hot_logits(lab, n)
        else:
            for j, w in eval_feats[i]["_first"]:
                lg[j] = one_hot_logits(task.labels.index(pred_tags[i][w]), n)
        out.append(lg)
    return out


@pytest.mark.parametrize("lang", ["en", "agg"])
def test_tagging_predict_gold(tiny_tokenizer: Any, lang: str) -> None:
    task, rows = demo_rows("demo-tag", lang)
    fmt = get_format(task.format)
    assert isinstance(fmt, Tagging)
    train = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=False)
    for tf, ef, r in zip(train, evals, rows, strict=True):
        assert tf["input_ids"] == ef["input_ids"]
        assert sum(lab != -100 for lab in tf["labels"]) == len(r["tokens"])
        assert [w for _, w in ef["_first"]] == list(range(len(r["tokens"])))
    logits = tagging_logits(task, train)
    preds = fmt.decode(task, rows, evals, logits, DEMO_HP)
    assert preds == [fmt.gold(task, r) for r in rows]
    scores = fmt.score(task, rows, preds)
    assert scores[task.metric] == 100.0
    assert scores["accuracy"] == 100.0


def test_tagging_imperfect(tiny_tokenizer: Any) -> None:
    task = get_task("demo-tag")
    fmt = Tagging()
    rows = [
        {"tokens": ["Ana", "Lima", "painted", "the", "river", "in", "Oslo", "."],
         "tags": ["B-PER", "I-PER", "O", "O", "O", "O", "B-LOC", "O"]},
        {"tokens": ["Ben", "sold", "it", "near", "New", "Riga", "."],
         "tags": ["B-PER", "O", "O", "O", "B-LOC", "I-LOC", "O"]},
    ]
    pred_in = [
        ["B-PER", "O", "O", "O", "O", "O", "B-LOC", "O"],  # PER cut short: wrong; LOC right
        ["B-PER", "O", "O", "O", "B-LOC", "I-LOC", "B-PER"],  # both right, plus a spurious PER
    ]
    train = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=False)
    preds = fmt.decode(task, rows, evals, tagging_logits(task, train, pred_in, evals), DEMO_HP)
    assert preds == pred_in
    # gold entities: PER(0-1), LOC(6), PER(0), LOC(4-5) = 4; predicted: PER(0), LOC(6), PER(0),
    # LOC(4-5), PER(6) = 5; correct 3 -> P = 3/5, R = 3/4, F1 = 2*.6*.75/1.35 = 2/3.
    # tokens: 15, wrong 2 ("Lima", final ".") -> accuracy 13/15.
    scores = fmt.score(task, rows, preds)
    assert scores["precision"] == pytest.approx(60.0)
    assert scores["recall"] == pytest.approx(75.0)
    assert scores["f1"] == pytest.approx(200 / 3)
    assert scores["accuracy"] == pytest.approx(100 * 13 / 15)


def test_tagging_first_subword_labels(tiny_tokenizer: Any) -> None:
    task = get_task("demo-tag")
    # "Müller" and "Zürich" split into several subwords (with <unk>s) in the tiny vocabulary.
    row = {"tokens": ["Müller", "lives", "in", "Zürich", "."], "tags": ["B-PER", "O", "O", "B-LOC", "O"]}
    f = Tagging().featurize([row], tiny_tokenizer, task, DEMO_HP, train=True)[0]
    e = Tagging().featurize([row], tiny_tokenizer, task, DEMO_HP, train=False)[0]
    enc = tiny_tokenizer([row["tokens"]], is_split_into_words=True)
    word_ids = enc.word_ids(0)
    assert word_ids[0] is None and word_ids[-1] is None
    assert len(word_ids) > len(row["tokens"]) + 2, "some word should have several subwords"
    expected = []
    for j, w in enumerate(word_ids):
        if w is None or (j > 0 and word_ids[j - 1] == w):
            expected.append(-100)
        else:
            expected.append(task.labels.index(row["tags"][w]))
    assert f["labels"] == expected
    assert f["labels"][0] == f["labels"][-1] == -100  # <s>, </s>
    assert [lab for lab in f["labels"] if lab != -100] == [1, 0, 0, 3, 0]
    assert e["_first"] == [(j, w) for j, w in enumerate(word_ids) if expected[j] != -100]


def test_tagging_long_sentences_are_cut_into_segments_every_word_predicted(tiny_tokenizer: Any) -> None:
    # XTREME's udpos/panx_tokenize_preprocess: a word that would overflow max_length (less the special tokens)
    # starts a new segment; training and evaluation alike. Nothing is truncated, nothing is left "O".
    task = get_task("demo-tag")
    fmt = Tagging()
    words = ["Ana", "Ben", "Carla", "Oslo", "Lyon", "Riga"] * 5  # single-token words
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"] * 5
    row = {"tokens": words, "tags": tags}
    hp = {**DEMO_HP, "max_length": 12}
    train = fmt.featurize([row], tiny_tokenizer, task, hp, train=True)
    evals = fmt.featurize([row], tiny_tokenizer, task, hp, train=False)
    # 30 one-subword words, 10 per segment (12 - <s> - </s>): 3 segments of 12 tokens.
    assert [len(f["input_ids"]) for f in train] == [12, 12, 12]
    assert [f["_row"] for f in train] == [0, 0, 0]
    assert [lab for f in train for lab in f["labels"] if lab != -100] == [task.labels.index(t) for t in tags]
    assert [w for f in evals for _, w in f["_first"]] == list(range(30))
    gold = [one_hot_logits(task.labels.index(t), len(task.labels)) for t in tags]
    logits = [np.stack([np.zeros(len(task.labels))] + gold[10 * k:10 * k + 10] + [np.zeros(len(task.labels))])
              for k in range(3)]
    assert fmt.decode(task, [row], evals, logits, hp) == [tags]


def test_tagging_segmentation_changes_the_stage_keys_of_tagging_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    from xit.tasks import registry

    udpos, xnli = get_task("udpos"), get_task("xnli")
    now = (udpos.data_fingerprint([("en", "train")], None), xnli.data_fingerprint([("en", "train")], None))
    monkeypatch.setattr(registry, "FORMAT_VERSIONS", {})
    before = (udpos.data_fingerprint([("en", "train")], None), xnli.data_fingerprint([("en", "train")], None))
    assert now[0] != before[0] and now[1] == before[1]


def test_tagging_segments_break_between_words_and_unk_overlong_words(tiny_tokenizer: Any) -> None:
    task = get_task("demo-tag")
    fmt = Tagging()
    # "Müller" and "Zürich" have several subwords in the tiny vocabulary; a 40-letter word more than a segment.
    long = "Zürichmüllerzürichmüllerzürichmüllerzür"
    row = {"tokens": ["Ana", "Müller", "Zürich", long, "Ben", "Müller"], "tags": ["B-PER"] * 6}
    hp = {**DEMO_HP, "max_length": 8}  # 6 subwords per segment
    n = [len(tiny_tokenizer([w], is_split_into_words=True, add_special_tokens=False)["input_ids"])
         for w in row["tokens"]]
    assert n[3] > 6 and 1 < n[1] and n[0] + n[1] + n[2] > 6, n
    evals = fmt.featurize([row], tiny_tokenizer, task, hp, train=False)
    assert all(len(f["input_ids"]) <= 8 for f in evals)
    assert [w for f in evals for _, w in f["_first"]] == list(range(6))  # each word once, in order
    segments = [[w for _, w in f["_first"]] for f in evals]
    for seg in segments:  # greedy: a segment ends only where its next word would not fit
        used = sum(1 if i == 3 else n[i] for i in seg)
        if seg[-1] + 1 < 6:
            assert used + (1 if seg[-1] + 1 == 3 else n[seg[-1] + 1]) > 6
    (unk_feature,) = [f for f in evals if any(w == 3 for _, w in f["_first"])]
    (j,) = [j for j, w in unk_feature["_first"] if w == 3]
    assert unk_feature["input_ids"][j] == tiny_tokenizer.unk_token_id


def test_tagging_every_word_of_real_ud_japanese_gets_a_prediction(tiny_tokenizer: Any, shared_data: Path) -> None:
    # ja_gsd has many sentences longer than 60 words; at max_length 128 some exceed it in subwords. Truncation
    # used to score their cut-off words as "O".
    from xit.tasks.registry import DataSource

    task = get_task("udpos")
    rows = task.load("ja", "dev", DataSource(data_files={"ja.dev": shared_data / "ud/ja_gsd-ud-dev.conllu"}))
    fmt = get_format("tagging")
    hp = {**DEMO_HP, "max_length": 128}
    train = fmt.featurize(rows, tiny_tokenizer, task, hp, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, task, hp, train=False)
    assert len(evals) > len(rows), "some sentence should need more than one segment"
    assert all(len(f["input_ids"]) <= 128 for f in evals)
    assert sum(lab != -100 for f in train for lab in f["labels"]) == sum(len(r["tokens"]) for r in rows)
    logits = [np.stack([one_hot_logits(max(lab, 0), len(task.labels)) for lab in f["labels"]]) for f in train]
    preds = fmt.decode(task, rows, evals, logits, hp)
    assert preds == [r["tags"] for r in rows]
    assert fmt.score(task, rows, preds)["accuracy"] == 100.0


def test_span_qa_predict_gold_demo(tiny_tokenizer: Any) -> None:
    task, rows = demo_rows("demo-qa", "agg")
    fmt = get_format(task.format)
    assert isinstance(fmt, SpanQA)
    hp = {**DEMO_HP, **task.defaults}
    train = fmt.featurize(rows, tiny_tokenizer, task, hp, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, task, hp, train=False)
    found = set()
    for tf, ef in zip(train, evals, strict=True):
        if (tf["start_positions"], tf["end_positions"]) != (0, 0):
            row = rows[ef["_row"]]
            assert span_text(row, ef["_offsets"], tf["start_positions"], tf["end_positions"]) == fmt.gold(task, row)
            found.add(ef["_row"])
    assert found == set(range(len(rows)))
    preds = fmt.decode(task, rows, evals, qa_perfect_logits(train), hp)
    assert preds == [fmt.gold(task, r) for r in rows]
    assert fmt.score(task, rows, preds)[task.metric] == 100.0


# --------------------------------------------------------------------------- collate


def test_collate_dynamic_padding(tiny_tokenizer: Any) -> None:
    pad = tiny_tokenizer.pad_token_id
    assert pad == 1
    feats = [
        {"input_ids": [0, 5, 2], "attention_mask": [1, 1, 1], "labels": [-100, 3, -100], "_first": [(1, 0)]},
        {"input_ids": [0, 5, 6, 7, 2], "attention_mask": [1, 1, 1, 1, 1], "labels": [-100, 1, 2, 0, -100],
         "_first": [(1, 0)]},
    ]
    out = collate(feats, pad)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    assert out["input_ids"].tolist() == [[0, 5, 2, pad, pad], [0, 5, 6, 7, 2]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert out["labels"].tolist() == [[-100, 3, -100, -100, -100], [-100, 1, 2, 0, -100]]
    assert all(t.dtype == torch.int64 for t in out.values())

    scalar = collate([{"input_ids": [0, 2], "attention_mask": [1, 1], "labels": 1, "start_positions": 4},
                      {"input_ids": [0, 9, 9, 2], "attention_mask": [1, 1, 1, 1], "labels": 0,
                       "start_positions": 0}], pad)
    assert scalar["labels"].tolist() == [1, 0]
    assert scalar["start_positions"].tolist() == [4, 0]
    assert scalar["input_ids"].tolist() == [[0, 2, pad, pad], [0, 9, 9, 2]]


def test_collate_multiple_choice_3d(tiny_tokenizer: Any) -> None:
    pad = tiny_tokenizer.pad_token_id
    feats = [
        {"input_ids": [[0, 4, 2], [0, 4, 5, 2]], "attention_mask": [[1, 1, 1], [1, 1, 1, 1]], "labels": 1},
        {"input_ids": [[0, 2], [0, 7, 2], [0, 7, 8, 9, 2]],
         "attention_mask": [[1, 1], [1, 1, 1], [1, 1, 1, 1, 1]], "labels": 2},
    ]
    out = collate(feats, pad)
    assert out["input_ids"].shape == (2, 3, 5)
    assert out["input_ids"].tolist() == [
        [[0, 4, 2, pad, pad], [0, 4, 5, 2, pad], [pad] * 5],
        [[0, 2, pad, pad, pad], [0, 7, 2, pad, pad], [0, 7, 8, 9, 2]],
    ]
    assert out["attention_mask"].tolist() == [
        [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0] * 5],
        [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]],
    ]
    assert out["labels"].tolist() == [1, 2]


# --------------------------------------------------------------------------- forward pass


@pytest.mark.parametrize("task_name", ["demo-para", "demo-mc", "demo-tag", "demo-qa"])
def test_forward_pass(tiny_model_dir: Any, tiny_tokenizer: Any, task_name: str) -> None:
    task = get_task(task_name)
    fmt = get_format(task.format)
    rows = task.load("en", "train")[:3]
    hp = {**DEMO_HP, **task.defaults}
    feats = fmt.featurize(rows, tiny_tokenizer, task, hp, train=True)[:3]
    assert len(feats) == 3
    batch = collate(feats, tiny_tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = new_model(tiny_model_dir, [task])
    model.train()
    loss, logits = model(task.name, batch)
    assert loss is not None and loss.ndim == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits).all()
    length = batch["input_ids"].shape[-1]
    expected = {
        "classification": (3, len(task.labels)),
        "multiple_choice": (3, task.num_choices),
        "tagging": (3, length, len(task.labels)),
        "span_qa": (3, length, 2),
    }[task.format]
    assert tuple(logits.shape) == expected


def test_forward_multiple_choice_padded_choice(tiny_model_dir: Any, tiny_tokenizer: Any) -> None:
    task = get_task("demo-mc")
    fmt = MultipleChoice()
    rows = task.load("en", "train")[:2]
    rows.append({"context": "Ana went to Oslo .", "question": "", "choices": ["then a .", "then b ."], "label": 1})
    feats = fmt.featurize(rows, tiny_tokenizer, task, DEMO_HP, train=True)
    batch = collate(feats, tiny_tokenizer.pad_token_id)
    assert batch["input_ids"].shape[:2] == (3, 4)
    model = new_model(tiny_model_dir, [task])
    model.eval()
    with torch.no_grad():
        loss, logits = model(task.name, batch)
    assert torch.isfinite(loss)
    assert logits.shape == (3, 4)
    assert (logits[2, 2:] == torch.finfo(logits.dtype).min).all()
    assert torch.isfinite(logits[:2]).all() and torch.isfinite(logits[2, :2]).all()
    assert fmt.decode(task, rows, feats, list(logits.numpy()), DEMO_HP)[2] in (0, 1)


def test_qa_long_question_is_cut_to_max_query_length_not_a_tokenizer_panic(tiny_tokenizer: Any, squad: Task) -> None:
    # A question longer than max_length used to reach the fast tokenizer whole: "only_second" truncation cannot
    # make it fit, and a room for the context no longer than doc_stride made the tokenizer panic (Rust). As
    # XTREME's run_squad.py, the question keeps its first max_query_length tokens (64 unless set).
    rows = qa_rows()[:2]
    long_q = " ".join(["which golden lantern did the painter sell"] * 20)
    n_long = len(tiny_tokenizer(long_q, add_special_tokens=False)["input_ids"])
    assert n_long > QA_HP["max_length"]
    rows[1] = {**rows[1], "question": long_q}
    fmt = SpanQA()
    pair = tiny_tokenizer.num_special_tokens_to_add(pair=True)
    for hp, cap in (({**QA_HP, "max_length": 256}, 64), ({**QA_HP, "max_length": 256, "max_query_length": 20}, 20),
                    (QA_HP, QA_HP["max_length"] - pair - QA_HP["doc_stride"] - 1)):
        train = fmt.featurize(rows, tiny_tokenizer, squad, hp, train=True)
        evals = fmt.featurize(rows, tiny_tokenizer, squad, hp, train=False)
        long = [f for f in evals if f["_row"] == 1]
        assert long and all(len(f["input_ids"]) <= hp["max_length"] for f in evals)
        # the question part of each window: every token before the first context token, less <s> and the pair's
        # separators, is exactly the cap
        first_ctx = next(i for i, o in enumerate(long[0]["_offsets"]) if o is not None)
        assert first_ctx - (pair - 1) == cap
        # the answer is still found through the context offsets, which the cut question does not shift
        found = [(t["start_positions"], t["end_positions"]) for t, e in zip(train, evals, strict=True)
                 if e["_row"] == 1 and t["start_positions"]]
        assert found
        e = next(e for t, e in zip(train, evals, strict=True) if e["_row"] == 1 and t["start_positions"])
        s, end = found[0]
        assert span_text(rows[1], e["_offsets"], s, end) == rows[1]["answers"]["text"][0]
    # the short question is untouched: its windows are the same as without the long one
    alone = fmt.featurize(rows[:1], tiny_tokenizer, squad, QA_HP, train=False)
    both = [f for f in fmt.featurize(rows, tiny_tokenizer, squad, QA_HP, train=False) if f["_row"] == 0]
    assert [f["input_ids"] for f in alone] == [f["input_ids"] for f in both]


class _CountingTokenizer:
    """The tiny tokenizer, counting its calls."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.calls = tokenizer, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


def test_qa_question_cap_tokenises_the_questions_once_and_the_cut_ones_once_together(tiny_tokenizer: Any) -> None:
    from xit.formats.span_qa import _capped_questions

    questions = ["who sold it ?", *(" ".join(["which golden lantern did the painter sell"] * k) for k in (3, 4, 5))]
    counting = _CountingTokenizer(tiny_tokenizer)
    out = _capped_questions(questions, counting, 256, 32, 8)
    assert counting.calls == 2  # all questions, then the three cut ones in one batch (was 1 + one per cut one)
    assert out[0] == questions[0]
    assert all(len(tiny_tokenizer(q, add_special_tokens=False)["input_ids"]) == 8 for q in out[1:])
    assert all(q.startswith(c) for q, c in zip(questions, out, strict=True))


class _GrowingTokenizer:
    """Words are tokens, except the last word of a text that does not end in "?": one token per character. A
    question cut at the end of a word therefore tokenises longer than the words it kept."""

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 4 if pair else 2

    def __call__(self, texts: str | list[str], add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False) -> dict[str, list]:
        ids, offsets = [], []
        for text in [texts] if isinstance(texts, str) else texts:
            spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
            if spans and not text.endswith("?"):
                a, b = spans.pop()
                spans += [(i, i + 1) for i in range(a, b)]
            ids.append(list(range(len(spans))))
            offsets.append(spans)
        if isinstance(texts, str):
            ids, offsets = ids[0], offsets[0]
        return {"input_ids": ids, **({"offset_mapping": offsets} if return_offsets_mapping else {})}


def test_qa_question_that_tokenises_longer_once_cut_loses_more_tokens_until_it_fits() -> None:
    from xit.formats.span_qa import _capped_questions

    questions = ["aa bb cc dd ee?", "a b c d e?", "aaa bbb ccc d?", "aa b?"]
    # cap 3 (room: 64 - 4 - 56 - 1): "aa bb cc" is aa bb c c (4), "aa bb" is aa b b (3); "a b c" fits at once;
    # "aaa bbb ccc" is 5 tokens, "aaa bbb" 4, "aaa" 3; the short question is untouched
    assert _capped_questions(questions, _GrowingTokenizer(), 64, 56, 3) == ["aa bb", "a b c", "aaa", "aa b?"]


def test_qa_max_length_without_room_for_a_window_is_one_line(tiny_tokenizer: Any, squad: Task) -> None:
    from xit.errors import WorkError

    with pytest.raises(WorkError, match="doc_stride"):
        SpanQA().featurize(qa_rows()[:1], tiny_tokenizer, squad, {**QA_HP, "max_length": 20}, train=False)


def test_question_cap_changes_the_stage_keys_of_span_qa_tasks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from xit.tasks import registry

    xquad, xnli = get_task("xquad"), get_task("xnli")
    now = (xquad.data_fingerprint([("en", "train")], None), xnli.data_fingerprint([("en", "train")], None))
    monkeypatch.setattr(registry, "FORMAT_VERSIONS", {k: v for k, v in registry.FORMAT_VERSIONS.items()
                                                      if k != "span_qa"})
    before = (xquad.data_fingerprint([("en", "train")], None), xnli.data_fingerprint([("en", "train")], None))
    assert now[0] != before[0] and now[1] == before[1]


SCORED_ROWS: dict[str, tuple[list[dict], list[Any]]] = {
    "classification": ([{"text_a": "a", "text_b": None, "label": 1}], [1]),
    "multiple_choice": ([{"context": "c", "question": "", "choices": ["a", "b"], "label": 1}], [0]),
    "tagging": ([{"tokens": ["Ana", "sat"], "tags": ["B-PER", "O"]}], [["B-PER", "O"]]),
    "span_qa": ([{"id": "q", "context": "a b", "question": "?", "answers": {"text": ["b"], "answer_start": [2]}}],
                ["b"]),
    "dual_encoder": ([{"query": "q", "candidate": "c"}] * 2, [1, 3]),
    "mlm": ([{"text": "a b"}], [{"correct": 1, "masked": 2}]),
}


@pytest.mark.parametrize("name", sorted(SCORED_ROWS))
def test_each_format_scores_exactly_the_metrics_it_declares(name: str) -> None:
    from xit.formats import REPORTS

    assert set(SCORED_ROWS) == set(REPORTS)
    fmt = get_format(name)
    rows, preds = SCORED_ROWS[name]
    assert fmt.reports is REPORTS[name] and fmt.reports.default in fmt.reports.metrics
    task = get_task("squad") if name == "span_qa" else None  # span QA reads its task's answer settings
    assert sorted(fmt.score(task, rows, preds)) == sorted(fmt.reports.metrics)


def test_retrieval_scores_exactly_the_metrics_declared() -> None:
    from xit.formats import RETRIEVAL_REPORTS
    from xit.retrieval import tatoeba_scores

    x = np.eye(3, dtype=np.float32)
    assert sorted(tatoeba_scores(x, x)) == sorted(RETRIEVAL_REPORTS["tatoeba"].metrics)


def test_a_retrieval_task_without_a_known_retrieval_kind_is_an_error_not_tatoebas_metrics() -> None:
    from xit.errors import XitError
    from xit.formats import RETRIEVAL_REPORTS, reports
    from xit.tasks.registry import Task, register

    assert reports("retrieval", "bucc") is RETRIEVAL_REPORTS["bucc"]
    for kind in (None, "nope"):
        with pytest.raises(XitError, match=r"^format retrieval: retrieval kind .* is not one of tatoeba, bucc"):
            reports("retrieval", kind)
    with pytest.raises(XitError, match="retrieval kind None"):
        register(Task(name="no-retrieval-kind", format="retrieval", languages=("en",), metric="accuracy",
                      source="-", family="test", load_fn=lambda *a: []))


def test_a_registered_task_names_a_metric_its_format_reports() -> None:
    from xit.formats import reports
    from xit.tasks.registry import Task, all_tasks, register

    assert all(t.metric in reports(t.format, t.retrieval).metrics for t in all_tasks())
    with pytest.raises(ValueError, match=r"metric 'mrr' is not reported by its format \(it reports: accuracy\)"):
        register(Task(name="no-such-metric", format="classification", languages=("en",), metric="mrr",
                      source="-", family="test", load_fn=lambda *a: []))
