"""XTREME targets UD-POS, XCOPA, MLQA and TyDiQA-GoldP: loaders and conformance (the MLQA metric: test_metrics.py).

As in test_task_loaders.py: tiny fixtures in each benchmark's original format are written to tmp_path and
read through the local loaders; the production (Hub) mapping is checked against a stand-in for
``datasets.load_dataset``; the real samples in ``../shared/data`` (``XIT_SHARED_DATA``) are loaded when present
(required under CI=true).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDownloads, FakeHub, gold_score
from original_files import jsonl, squad_json, write

from xit.errors import XitError
from xit.formats import get_format
from xit.tasks import DataSource, get_task
from xit.tasks.xtreme import UPOS_LABELS

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- registry entries


def test_registered_targets() -> None:
    expect = {  # name: (format, n languages, metric)
        "udpos": ("tagging", 33, "f1"),
        "xcopa": ("multiple_choice", 11, "accuracy"),
        "mlqa": ("span_qa", 7, "em_f1"),
        "tydiqa": ("span_qa", 9, "em_f1"),
    }
    for name, (fmt, n, metric) in expect.items():
        t = get_task(name)
        assert (t.family, t.format, len(t.languages), t.metric, t.eval_split) == ("xtreme", fmt, n, metric, "test")
        assert len(set(t.languages)) == n and t.local_files_fn is not None and t.train_language == "en"
    udpos = get_task("udpos")
    assert udpos.labels == UPOS_LABELS and len(set(UPOS_LABELS)) == 17
    assert set(udpos.languages) == set(
        "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi yo zh".split()
    )
    assert get_task("xcopa").num_choices == 2
    assert set(get_task("xcopa").languages) == set("et ht id it qu sw ta th tr vi zh".split())
    assert set(get_task("mlqa").languages) == {"en", "ar", "de", "es", "hi", "vi", "zh"}
    assert set(get_task("tydiqa").languages) == {"en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te"}


# --------------------------------------------------------------------------- UD-POS (CoNLL-U)

CONLLU = """# newdoc id = d1
# sent_id = s1
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
3.1\tgone\tgo\tVERB\t_\t_\t_\t_\t3:conj\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_
"""
# As XTREME reads UD: the multiword token "Don't" is one word; Do (AUX) and n't (PART) both hang off "go", so the
# tie goes to the UPOS first in the precedence list, AUX.
CONLLU_ROWS = [
    {"tokens": ["Don't", "go", "."], "tags": ["AUX", "VERB", "PUNCT"]},
    {"tokens": ["Hi"], "tags": ["INTJ"]},
]


# XTREME scores POS with seqeval (as for NER), which warns that UPOS tags are not BIO tags.
SEQEVAL_NON_BIO = "ignore:.*seems not to be NE tag:UserWarning"


def _ud(*lines: str) -> str:
    return "".join("\t".join(ln.split()) + "\n" for ln in lines) + "\n"


def test_conllu_multiword_tokens_become_their_surface_form_with_the_head_words_upos(tmp_path: Path) -> None:
    from xit.tasks.xtreme import conllu_rows

    path = write(tmp_path / "x.conllu", "".join([
        # es "del" = de (ADP) + el (DET), both under "casa": a tie; Spanish's list ranks ADP before DET.
        _ud("1 Sale _ VERB _ _ 0 root _ _", "2-3 del _ _ _ _ _ _ _ _", "2 de _ ADP _ _ 4 case _ _",
            "3 el _ DET _ _ 4 det _ _", "4 coche _ NOUN _ _ 1 obl _ _"),
        # "dárselo" = dar (VERB) + se + lo (PRON, under dar): dar is the one word nearest the root.
        _ud("1 Quiero _ VERB _ _ 0 root _ _", "2-4 dárselo _ _ _ _ _ _ _ _", "2 dar _ VERB _ _ 1 xcomp _ _",
            "3 se _ PRON _ _ 2 iobj _ _", "4 lo _ PRON _ _ 2 obj _ _"),
        # A tie between UPOS tags Spanish's list lacks: the first word of the span wins.
        _ud("1 x _ NOUN _ _ 0 root _ _", "2-3 yz _ _ _ _ _ _ _ _", "2 y _ SYM _ _ 1 dep _ _",
            "3 z _ NUM _ _ 1 dep _ _", "3.1 e _ X _ _ _ _ _ _"),
    ]))  # fmt: skip
    udpos = get_task("udpos")
    assert conllu_rows(udpos, path, "es") == [
        {"tokens": ["Sale", "del", "coche"], "tags": ["VERB", "ADP", "NOUN"]},
        {"tokens": ["Quiero", "dárselo"], "tags": ["VERB", "VERB"]},
        {"tokens": ["x", "yz"], "tags": ["NOUN", "SYM"]},
    ]
    # The default list (other languages) ranks NUM before SYM.
    assert conllu_rows(udpos, path, "de")[2] == {"tokens": ["x", "yz"], "tags": ["NOUN", "NUM"]}
    # Without a language: the syntactic words.
    assert conllu_rows(udpos, path)[0] == {"tokens": ["Sale", "de", "el", "coche"],
                                           "tags": ["VERB", "ADP", "DET", "NOUN"]}  # fmt: skip


@pytest.mark.filterwarnings(SEQEVAL_NON_BIO)
@pytest.mark.parametrize("crlf", [False, True])
def test_udpos_conllu_skips_multiword_tokens_empty_nodes_and_comments(tmp_path: Path, crlf: bool) -> None:
    write(tmp_path / "en/en_ewt-ud-dev.conllu", CONLLU, crlf)
    udpos, src = get_task("udpos"), DataSource(data_dir=tmp_path)
    assert udpos.load("en", "dev", src) == CONLLU_ROWS
    assert udpos.local_files("en", "dev", src) == [tmp_path / "en/en_ewt-ud-dev.conllu"]
    assert gold_score(get_task("udpos"), CONLLU_ROWS)["f1"] == pytest.approx(100.0)


def test_udpos_layouts_concatenate_treebanks_and_splits(tmp_path: Path) -> None:
    one = "1\tEins\teins\tNUM\t_\t_\t0\troot\t_\t_\n\n"
    two = "1\tZwei\tzwei\tNUM\t_\t_\t0\troot\t_\t_\n"
    write(tmp_path / "de/de_hdt-ud-test.conllu", two)
    write(tmp_path / "de/de_gsd-ud-test.conllu", one)
    write(tmp_path / "fi_tdt-ud-dev.conllu", CONLLU)  # flat, as in the shared samples
    write(tmp_path / "UD_Arabic-NYUAD/ar_nyuad-ud-test.conllu", "1\t_\t_\tNOUN\t_\t_\t0\troot\t_\t_\n")
    write(tmp_path / "UD_Arabic-PADT/ar_padt-ud-test.conllu", "1\tقال\t_\tVERB\t_\t_\t0\troot\t_\t_\n")
    udpos, src = get_task("udpos"), DataSource(data_dir=tmp_path)
    # Every treebank of a language, in file-name order (gsd before hdt).
    assert udpos.load("de", "test", src) == [{"tokens": ["Eins"], "tags": ["NUM"]},
                                             {"tokens": ["Zwei"], "tags": ["NUM"]}]  # fmt: skip
    assert udpos.load("fi", "dev", src) == CONLLU_ROWS
    # UD's own layout; Arabic NYUAD (no word forms in the public release) is skipped as XTREME does.
    assert udpos.load("ar", "test", src) == [{"tokens": ["قال"], "tags": ["VERB"]}]
    override = DataSource(data_files={"de.dev": tmp_path / "fi_tdt-ud-dev.conllu"})
    assert udpos.load("de", "dev", override) == CONLLU_ROWS
    # Zero-shot: only English has train/dev; kk/th/tl/yo have no dev in UD v2.5.
    for lang, split in [("de", "train"), ("th", "dev"), ("kk", "dev"), ("yo", "train")]:
        with pytest.raises(XitError, match=f"no split '{split}' for language '{lang}'"):
            udpos.load(lang, split, src)
    with pytest.raises(XitError, match=r"missing local data file .*ja/\*-ud-test\.conllu"):
        udpos.load("ja", "test", src)
    write(tmp_path / "hu/hu_szeged-ud-test.conllu", "1\tx\tx\tFOO\t_\t_\t0\troot\t_\t_\n")
    with pytest.raises(XitError, match=r"hu_szeged-ud-test\.conllu:1: UPOS 'FOO'"):
        udpos.load("hu", "test", src)
    write(tmp_path / "hu/hu_szeged-ud-test.conllu", "1\tx\tx\tNOUN\n")
    with pytest.raises(XitError, match="expected 10 tab-separated"):
        udpos.load("hu", "test", src)


def _conll_sentence(*words: tuple[str, str]) -> str:
    return "".join(f"{i}\t{w}\t_\t{t}\t_\t_\t0\troot\t_\t_\n" for i, (w, t) in enumerate(words, 1)) + "\n"


@pytest.mark.parametrize("task", ["udpos", "udpos-r"])
def test_udpos_applies_xtreme_preprocessing(tmp_path: Path, task: str) -> None:
    """XTREME's udpos_preprocess: a sentence is dropped when all its forms, or all but one, are "_" (treebanks
    released without text); U+200C and spaces inside a word are deleted; the word count never changes."""
    write(tmp_path / "fa/fa_seraji-ud-test.conllu", "".join([
        _conll_sentence(("_", "NOUN"), ("_", "VERB"), ("_", "PUNCT")),  # all "_": dropped
        _conll_sentence(("_", "NOUN"), ("x", "VERB"), ("_", "PUNCT")),  # all but one: dropped
        _conll_sentence(("_", "NOUN"), ("x", "VERB"), ("y", "NOUN"), ("_", "PUNCT")),  # 2 of 4: kept
        _conll_sentence(("می\u200cشود", "VERB"), ("_", "PUNCT")),  # 1 of 2 is "_" = all but one: dropped
        _conll_sentence(("می\u200cشود", "VERB"), ("a b", "NOUN"), ("_", "SYM")),  # kept, words cleaned
        _conll_sentence(("_", "PUNCT")),  # one word, "_": dropped
        _conll_sentence(("x", "X")),
    ]))  # fmt: skip
    assert get_task(task).load("fa", "test", DataSource(data_dir=tmp_path)) == [
        {"tokens": ["_", "x", "y", "_"], "tags": ["NOUN", "VERB", "NOUN", "PUNCT"]},
        {"tokens": ["میشود", "ab", "_"], "tags": ["VERB", "NOUN", "SYM"]},
        {"tokens": ["x"], "tags": ["X"]},
    ]


def test_udpos_production_path_is_the_v25_release_read_as_the_local_path(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths give XTREME's sentences: the production path downloads UD v2.5 (download_treebank "xtreme")
    and reads it as the local path, fused forms and all (the Hub's google/xtreme udpos.* keeps syntactic words
    and is not read). Real sample: German GSD dev, 164 multiword tokens ("zum" = zu + dem)."""
    import datasets

    release = tmp_path / "extracted/ud-treebanks-v2.5/UD_German-GSD"
    release.mkdir(parents=True)
    (release / "de_gsd-ud-dev.conllu").symlink_to(shared_data / "ud/de_gsd-ud-dev.conllu")
    downloads = FakeDownloads(tmp_path / "extracted")
    monkeypatch.setattr(datasets, "DownloadManager", downloads)
    monkeypatch.setattr(datasets, "load_dataset", FakeHub({}, scripted=set()))  # any Hub read fails
    udpos = get_task("udpos")
    hub = udpos.load("de", "dev")
    assert downloads.urls == ["https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3105/ud-treebanks-v2.5.tgz"]
    local = udpos.load("de", "dev", DataSource(data_files={"de.dev": shared_data / "ud/de_gsd-ud-dev.conllu"}))
    assert hub == local and len(hub) == 799
    words = [w for r in hub for w in r["tokens"]]
    assert "zum" in words and len(words) == 12480 - 164  # each multiword token one word (2 syntactic words)


# --------------------------------------------------------------------------- XCOPA


def _copa(idx: int, q: str, label: int, lang: str = "xx") -> dict[str, Any]:
    return {"premise": f"{lang} premise {idx}", "choice1": f"{lang} c1 {idx}", "choice2": f"{lang} c2 {idx}",
            "question": q, "label": label, "idx": idx, "changed": False}  # fmt: skip


def test_xcopa_jsonl_crlf_layouts_and_copa_train(tmp_path: Path) -> None:
    write(tmp_path / "val.et.jsonl", jsonl(_copa(0, "cause", 0, "et"), _copa(1, "effect", 1, "et")), crlf=True)
    write(tmp_path / "zh/test.zh.jsonl", jsonl(_copa(7, "effect", 1, "zh")), crlf=True)
    write(tmp_path / "COPA/train.jsonl", jsonl(_copa(1, "effect", 0, "en")))
    write(tmp_path / "COPA/val.jsonl", jsonl(_copa(401, "cause", 1, "en")))
    xcopa, src = get_task("xcopa"), DataSource(data_dir=tmp_path)
    et = xcopa.load("et", "dev", src)
    assert et == [
        {"context": "et premise 0", "question": "What was the cause?", "choices": ["et c1 0", "et c2 0"], "label": 0},
        {"context": "et premise 1", "question": "What happened as a result?", "choices": ["et c1 1", "et c2 1"],
         "label": 1},
    ]  # fmt: skip
    assert xcopa.load("zh", "test", src)[0]["choices"] == ["zh c1 7", "zh c2 7"]
    assert xcopa.local_files("zh", "test", src) == [tmp_path / "zh/test.zh.jsonl"]
    assert xcopa.load("en", "train", src)[0]["question"] == "What happened as a result?"
    assert xcopa.load("en", "dev", src)[0]["label"] == 1
    assert gold_score(get_task("xcopa"), et) == {"accuracy": pytest.approx(100.0)}
    with pytest.raises(XitError, match="no split 'train' for language 'et'"):
        xcopa.load("et", "train", src)
    with pytest.raises(XitError, match=r"missing local data file .*qu/test\.qu\.jsonl"):
        xcopa.load("qu", "test", src)
    write(tmp_path / "test.sw.jsonl", jsonl(_copa(0, "why", 0)))
    with pytest.raises(XitError, match="cause/effect"):
        xcopa.load("sw", "test", src)


# --------------------------------------------------------------------------- MLQA and TyDiQA-GoldP


def test_mlqa_matching_language_test_files_and_squad_train(tmp_path: Path) -> None:
    ctx = "Die Universität Peking wurde 1898 gegründet."
    write(tmp_path / "MLQA_V1/test/test-context-de-question-de.json",
          squad_json(("m1", "Wann?", [("1898", 28)]), ("m2", "Was?", [("Die Universität Peking", 0)]), context=ctx))
    zh = squad_json(("z1", "哪里？", [("北京", 0)]), context="北京大学")
    write(tmp_path / "test-context-zh-question-zh.json", zh)
    write(tmp_path / "train-v1.1.json", squad_json(("t1", "What?", [("b", 2)]), context="a b"))
    mlqa_task, src = get_task("mlqa"), DataSource(data_dir=tmp_path)
    de = mlqa_task.load("de", "test", src)
    assert de[0] == {"id": "m1", "context": ctx, "question": "Wann?", "language": "de",
                     "answers": {"text": ["1898"], "answer_start": [28]}}  # fmt: skip
    assert [r["language"] for r in mlqa_task.load("zh", "test", src)] == ["zh"]
    assert mlqa_task.load("en", "train", src)[0]["language"] == "en"
    assert gold_score(get_task("mlqa"), de) == {"em": 100.0, "f1": 100.0, "em_f1": 100.0}
    # MLQA's German article list applies: "Die" is dropped, so a prediction without it is exact.
    fmt = get_format("span_qa")
    assert fmt.score(mlqa_task, de, ["1898", "Universität Peking"])["em"] == 100.0
    for split in ("train", "dev"):
        with pytest.raises(XitError, match=f"no split '{split}' for language 'de'"):
            mlqa_task.load("de", split, src)
    with pytest.raises(XitError, match=r"missing local data file .*MLQA_V1/test/test-context-ar-question-ar\.json"):
        mlqa_task.load("ar", "test", src)


def test_tydiqa_goldp_release_and_xtreme_names(tmp_path: Path) -> None:
    d = tmp_path / "tydiqa-goldp-v1.1-dev"
    write(d / "tydiqa-goldp-dev-swahili.json", squad_json(("swahili-1-0", "Nini?", [("Nairobi", 0)]),
                                                           context="Nairobi ni mji mkuu."))  # fmt: skip
    write(d / "tydiqa.ko.dev.json", squad_json(("korean-2-0", "어디?", [("서울", 0)]), context="서울은 수도이다."))
    write(d / "tydiqa.goldp.en.dev.json", squad_json(("english-9-0", "Who?", [("Bob", 0)]), context="Bob ran."))
    # The release's train file holds every language; XTREME trains on its English questions.
    write(tmp_path / "tydiqa-goldp-v1.1-train.json", squad_json(
        ("english-5-0", "Who?", [("Ann", 0)]), ("swahili-6-0", "Nani?", [("Juma", 7)]),
        ("english-7-0", "What?", [("ran", 4)]), context="Ann ran. Juma"))
    write(tmp_path / "train-v1.1.json", squad_json(("squad-1", "Who?", [("Bob", 0)]), context="Bob ran."))
    tydiqa, src = get_task("tydiqa"), DataSource(data_dir=tmp_path)
    sw = tydiqa.load("sw", "test", src)
    assert sw == [{"id": "swahili-1-0", "context": "Nairobi ni mji mkuu.", "question": "Nini?",
                   "answers": {"text": ["Nairobi"], "answer_start": [0]}}]  # fmt: skip
    assert tydiqa.load("ko", "test", src)[0]["answers"]["text"] == ["서울"]
    assert [r["id"] for r in tydiqa.load("en", "train", src)] == ["english-5-0", "english-7-0"]  # not SQuAD
    assert [r["id"] for r in tydiqa.load("en", "dev", src)] == ["english-9-0"]  # = the English test set
    assert tydiqa.load("en", "test", src) == tydiqa.load("en", "dev", src)
    assert gold_score(get_task("tydiqa"), sw)["em_f1"] == 100.0
    with pytest.raises(XitError, match=r"missing local data file .*tydiqa-goldp-dev-telugu\.json"):
        tydiqa.load("te", "test", src)
    # XTREME's per-language split of the train file wins over the release's.
    write(tmp_path / "tydiqa-goldp-v1.1-train/tydiqa.en.train.json",
          squad_json(("english-8-0", "Who?", [("Al", 0)]), context="Al"))
    assert [r["id"] for r in tydiqa.load("en", "train", src)] == ["english-8-0"]
    write(tmp_path / "tydiqa-goldp-v1.1-train/tydiqa.en.train.json", squad_json(("s1", "Who?", [("Al", 0)]),
                                                                                context="Al"))  # fmt: skip
    with pytest.raises(XitError, match=r"tydiqa\.en\.train\.json: no TyDiQA-GoldP question of language 'en'"):
        tydiqa.load("en", "train", src)


# --------------------------------------------------------------------------- MLQA normalisation


# --------------------------------------------------------------------------- production mapping (no network)


def test_production_loaders_map_hub_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    qa = {"title": "T", "context": "ab", "question": "?", "answers": {"text": ["b"], "answer_start": [1]}}
    hub = FakeHub({
        ("cambridgeltl/xcopa", "qu", "validation"): [_copa(0, "effect", 1, "qu")],
        ("aps/super_glue", "copa", "train"): [
            {k: v for k, v in _copa(3, "cause", 0, "en").items() if k != "changed"}
        ],
        ("google/xtreme", "MLQA.hi.hi", "test"): [{**qa, "id": "h1"}],
        ("rajpurkar/squad", "plain_text", "train"): [{**qa, "id": "s1"}],
        ("google/xtreme", "tydiqa", "validation"): [
            {**qa, "id": "swahili-1-0"}, {**qa, "id": "bengali-2-0"}, {**qa, "id": "swahili-3-1"},
            {**qa, "id": "english-4-0"},
        ],
        ("google/xtreme", "tydiqa", "train"): [{**qa, "id": "english-5-0"}, {**qa, "id": "arabic-6-0"}],
    }, scripted={"aps/super_glue"})  # fmt: skip
    monkeypatch.setattr(datasets, "load_dataset", hub)
    assert get_task("xcopa").load("qu", "dev") == [
        {"context": "qu premise 0", "question": "What happened as a result?", "choices": ["qu c1 0", "qu c2 0"],
         "label": 1}
    ]  # fmt: skip
    assert get_task("xcopa").load("en", "train")[0]["question"] == "What was the cause?"
    assert hub.calls[-1] == ("aps/super_glue", None, "train",
                             {"revision": "refs/convert/parquet", "data_dir": "copa"})  # fmt: skip
    assert get_task("mlqa").load("hi", "test") == [
        {"id": "h1", "context": "ab", "question": "?", "answers": {"text": ["b"], "answer_start": [1]},
         "language": "hi"}
    ]  # fmt: skip
    assert get_task("mlqa").load("en", "train")[0]["language"] == "en"
    assert [r["id"] for r in get_task("tydiqa").load("sw", "test")] == ["swahili-1-0", "swahili-3-1"]
    assert "language" not in get_task("tydiqa").load("bn", "test")[0]
    assert [r["id"] for r in get_task("tydiqa").load("en", "train")] == ["english-5-0"]
    assert [r["id"] for r in get_task("tydiqa").load("en", "dev")] == ["english-4-0"]


# --------------------------------------------------------------------------- conformance: ../shared/data

UD_COUNTS = {  # file: (language, sentences, syntactic words) per shared/data/README.md; XTREME reads fewer
    # words: a multiword token "i-j" is one word, so the tests take sum(j - i) off.
    "en_ewt-ud-dev.conllu": ("en", 2001, 25147),
    "fi_tdt-ud-dev.conllu": ("fi", 1364, 18308),
    "de_gsd-ud-dev.conllu": ("de", 799, 12480),
    "hu_szeged-ud-dev.conllu": ("hu", 441, 11418),
    "ja_gsd-ud-dev.conllu": ("ja", 507, 12287),
}


@pytest.mark.filterwarnings(SEQEVAL_NON_BIO)
def test_shared_ud_dev(shared_data: Path) -> None:
    udpos = get_task("udpos")
    for name, (lang, n_sent, n_words) in UD_COUNTS.items():
        # Flat file names "<lang>_<treebank>-ud-dev.conllu" resolve through data_dir.
        rows = udpos.load(lang, "dev", DataSource(data_dir=shared_data / "ud"))
        assert len(rows) == n_sent, name
        spans = [ln.split("\t", 1)[0].split("-") for ln in (shared_data / "ud" / name).read_text().splitlines()
                 if re.match(r"\d+-\d+\t", ln)]
        assert sum(len(r["tokens"]) for r in rows) == n_words - sum(int(b) - int(a) for a, b in spans), name
        assert all(len(r["tokens"]) == len(r["tags"]) and r["tokens"] for r in rows), name
        assert {t for r in rows for t in r["tags"]} <= set(UPOS_LABELS), name
    en = udpos.load("en", "dev", DataSource(data_files={"en.dev": shared_data / "ud/en_ewt-ud-dev.conllu"}))
    assert gold_score(get_task("udpos"), en)["f1"] == pytest.approx(100.0)
    tagged = Counter((t, g) for r in en for t, g in zip(r["tokens"], r["tags"], strict=True))
    # Multiword tokens are single words as in XTREME's data: "didn't" (did AUX + n't PART) is AUX.
    assert tagged[("didn't", "AUX")] == 8 and sum(n for (t, _), n in tagged.items() if t == "didn't") == 8
    de = udpos.load("de", "dev", DataSource(data_dir=shared_data / "ud"))
    de_tagged = Counter((t, g) for r in de for t, g in zip(r["tokens"], r["tags"], strict=True))
    assert de_tagged[("zum", "ADP")] == 26 and de_tagged[("im", "ADP")] == 49  # zu + dem, in + dem


def test_shared_xcopa(shared_data: Path) -> None:
    xcopa, src = get_task("xcopa"), DataSource(data_dir=shared_data / "xcopa")
    for lang in xcopa.languages:
        assert b"\r\n" in (shared_data / f"xcopa/test.{lang}.jsonl").read_bytes()[:2000]  # CRLF, as upstream
        val, test = xcopa.load(lang, "dev", src), xcopa.load(lang, "test", src)
        assert (len(val), len(test)) == (100, 500), lang
        assert Counter(r["label"] for r in test) == {0: 250, 1: 250}, lang
        assert Counter(r["label"] for r in val) == {0: 55, 1: 45}, lang
        for r in val + test:
            assert len(r["choices"]) == 2 and all(c.strip() for c in r["choices"]) and r["context"].strip()
            assert r["question"] in ("What was the cause?", "What happened as a result?")
            assert not any(s.endswith("\r") for s in [r["context"], *r["choices"]])
    # Upstream quirk (README): every Thai row says "effect".
    assert {r["question"] for r in xcopa.load("th", "test", src)} == {"What happened as a result?"}
    assert gold_score(get_task("xcopa"), xcopa.load("et", "test", src))["accuracy"] == 100.0
