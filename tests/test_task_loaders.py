"""Task loaders of the XTREME and English families.

Tiny fixtures in each benchmark's original format are written to tmp_path and read through the
same local code path a spec with ``data_dir``/``data_files`` uses; the production (Hub) mapping is
checked against a stand-in for ``datasets.load_dataset`` (no network); and the real samples in
``../shared/data`` (``XIT_SHARED_DATA``) are loaded for conformance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakes import FakeDownloads, FakeHub
from original_files import GLUE_MNLI_HEADER, glue_mnli_row, squad_json, tsv, write

from xit.errors import XitError
from xit.tasks import DataSource, get_task
from xit.tasks.xtreme import TATOEBA_ISO3

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- registry entries


def test_registered_tasks_and_language_lists() -> None:
    expect = {  # name: (family, format, n languages, metric, eval_split)
        "xnli": ("xtreme", "classification", 15, "accuracy", "test"),
        "pawsx": ("xtreme", "classification", 7, "accuracy", "test"),
        "panx": ("xtreme", "tagging", 40, "f1", "test"),
        "xquad": ("xtreme", "span_qa", 11, "em_f1", "test"),
        "tatoeba": ("xtreme", "retrieval", 36, "accuracy", "test"),
        "bucc": ("xtreme", "retrieval", 4, "f1", "test"),
        "mnli": ("english", "classification", 1, "accuracy", "dev"),
        "squad": ("english", "span_qa", 1, "em_f1", "dev"),
        "hellaswag": ("english", "multiple_choice", 1, "accuracy", "dev"),
    }
    for name, (family, fmt, n, metric, eval_split) in expect.items():
        t = get_task(name)
        got = (t.family, t.format, len(t.languages), t.metric, t.eval_split)
        assert got == (family, fmt, n, metric, eval_split), name
        assert len(set(t.languages)) == n and t.local_files_fn is not None
    assert get_task("xnli").labels == ("entailment", "neutral", "contradiction")
    assert get_task("panx").labels == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    assert {"en", "yo", "my", "ms", "jv"} <= set(get_task("panx").languages)
    assert "ro" not in get_task("xquad").languages  # XQuAD-ro came after XTREME
    assert get_task("bucc").languages == ("de", "fr", "ru", "zh")
    for name in ("tatoeba", "bucc"):
        assert get_task(name).roles == frozenset({"target"})
    assert (get_task("tatoeba").retrieval, get_task("bucc").retrieval) == ("tatoeba", "bucc")
    for name in ("mnli", "squad", "hellaswag"):
        assert get_task(name).roles == frozenset({"intermediate"}) and get_task(name).languages == ("en",)
    assert get_task("hellaswag").num_choices == 4
    assert (TATOEBA_ISO3["zh"], TATOEBA_ISO3["sw"], TATOEBA_ISO3["fa"]) == ("cmn", "swh", "pes")


# --------------------------------------------------------------------------- classification


XNLI_HEADER = (
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
    "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre",
)  # fmt: skip


def _xnli_row(lang: str, gold: str, s1: str, s2: str) -> tuple[str, ...]:
    return (lang, gold, "", "", "", "", s1, s2, "1", "1", "fiction")


@pytest.mark.parametrize("crlf", [False, True])
def test_xnli_local_dev_filters_language_and_en_train_is_mnli(tmp_path: Path, crlf: bool) -> None:
    write(tmp_path / "XNLI-1.0/xnli.dev.tsv", tsv(
        XNLI_HEADER,
        _xnli_row("en", "neutral", "A man sleeps.", "He is tired."),
        _xnli_row("de", "contradiction", "Ein Mann schläft.", "Er rennt."),
        _xnli_row("de", "entailment", 'Er sagt "ja".', "Er stimmt zu."),
    ), crlf)  # fmt: skip
    write(tmp_path / "MNLI/train.tsv", tsv(
        GLUE_MNLI_HEADER,
        glue_mnli_row(0, 'The "old" house.', "A house.", "entailment"),
        glue_mnli_row(1, "Cats purr.", "Dogs bark.", "neutral"),
    ), crlf)  # fmt: skip
    src = DataSource(data_dir=tmp_path)
    xnli = get_task("xnli")
    de = xnli.load("de", "dev", src)
    assert de == [  # XNLI-1.0's genre column is kept (evaluation slices)
        {"text_a": "Ein Mann schläft.", "text_b": "Er rennt.", "label": 2, "genre": "fiction"},
        {"text_a": 'Er sagt "ja".', "text_b": "Er stimmt zu.", "label": 0, "genre": "fiction"},
    ]
    assert [r["label"] for r in xnli.load("en", "dev", src)] == [1]
    train = xnli.load("en", "train", src)
    # Bare quotes are kept verbatim (no CSV quoting in these TSVs).
    assert train[0] == {"text_a": 'The "old" house.', "text_b": "A house.", "label": 0}
    assert len(train) == 2
    assert xnli.local_files("de", "dev", src) == [tmp_path / "XNLI-1.0/xnli.dev.tsv"]
    # German train is XNLI-MT's translated MNLI (xnli@de), read from its own file.
    with pytest.raises(XitError, match="missing local data file .*XNLI-MT-1.0/multinli/multinli.train.de.tsv"):
        xnli.load("de", "train", src)


def test_mnli_drops_no_consensus_rows_and_reads_multinli_jsonl(tmp_path: Path) -> None:
    write(tmp_path / "MNLI/dev_matched.tsv", tsv(
        GLUE_MNLI_HEADER,
        glue_mnli_row(0, "a", "b", "contradiction"),
        glue_mnli_row(1, "c", "d", "-"),
    ))  # fmt: skip
    mnli, src = get_task("mnli"), DataSource(data_dir=tmp_path)
    assert mnli.load("en", "dev", src) == [{"text_a": "a", "text_b": "b", "label": 2}]
    # No GLUE train.tsv: the MultiNLI 1.0 release's jsonl is the fallback.
    lines = [{"gold_label": g, "sentence1": f"p{i}", "sentence2": f"h{i}", "genre": "government"}
             for i, g in enumerate(["neutral", "entailment", "-"])]
    jsonl = "".join(json.dumps(x) + "\n" for x in lines)
    write(tmp_path / "multinli_1.0/multinli_1.0_train.jsonl", jsonl, crlf=True)
    rows = mnli.load("en", "train", src)
    assert [(r["text_a"], r["label"]) for r in rows] == [("p0", 1), ("p1", 0)]
    assert mnli.local_files("en", "train", src)[0].name == "multinli_1.0_train.jsonl"


def test_pawsx_keeps_every_labelled_row_as_xtreme(tmp_path: Path) -> None:
    header = ("id", "sentence1", "sentence2", "label")
    write(tmp_path / "de/dev_2k.tsv", tsv(
        header,
        ("1", "Er kam an.", "Er ist angekommen.", "1"),
        ("2", "NS", "Etwas.", "0"),
        ("3", "Etwas.", "NS", "0"),
        ("4", "Leer.", "", "1"),
        ("5", 'Ein "Zitat".', "Kein Zitat.", "0"),
    ), crlf=True)  # fmt: skip
    write(tmp_path / "en/train.tsv", tsv(header, ("1", "a b", "b a", "0"), ("2", "c", "c", "1")))
    src = DataSource(data_dir=tmp_path)
    pawsx = get_task("pawsx")
    # XTREME's pawsx_preprocess (utils_preprocess.py) keeps the untranslated "NS" rows: so does xit.
    assert pawsx.load("de", "dev", src) == [
        {"text_a": "Er kam an.", "text_b": "Er ist angekommen.", "label": 1},
        {"text_a": "NS", "text_b": "Etwas.", "label": 0},
        {"text_a": "Etwas.", "text_b": "NS", "label": 0},
        {"text_a": "Leer.", "text_b": "", "label": 1},
        {"text_a": 'Ein "Zitat".', "text_b": "Kein Zitat.", "label": 0},
    ]
    assert [r["label"] for r in pawsx.load("en", "train", src)] == [0, 1]
    override = DataSource(data_files={"de.test": tmp_path / "de/dev_2k.tsv"})
    assert pawsx.local_files("de", "test", override) == [tmp_path / "de/dev_2k.tsv"]


# --------------------------------------------------------------------------- tagging


def test_panx_bio_sequences_in_all_accepted_line_formats(tmp_path: Path) -> None:
    write(tmp_path / "de/dev", "de:Angela\tB-PER\nde:Merkel\tI-PER\nde:in\tO\nde:Berlin\tB-LOC\n\n\n"
                               "de:Die\tO\nde:UN\tB-ORG\nde:Vereinte:Nationen\tI-ORG\n", crlf=True)
    write(tmp_path / "de/test", "-DOCSTART-\tO\n\nNew\tB-LOC\nYork\tI-LOC\n\nBob B-PER\n")
    src = DataSource(data_dir=tmp_path)
    panx = get_task("panx")
    assert panx.load("de", "dev", src) == [
        {"tokens": ["Angela", "Merkel", "in", "Berlin"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]},
        {"tokens": ["Die", "UN", "Vereinte:Nationen"], "tags": ["O", "B-ORG", "I-ORG"]},
    ]
    assert panx.load("de", "test", src) == [
        {"tokens": ["New", "York"], "tags": ["B-LOC", "I-LOC"]},
        {"tokens": ["Bob"], "tags": ["B-PER"]},
    ]
    write(tmp_path / "de/train", "de:Paris\tB-GPE\n")
    with pytest.raises(XitError, match=r"de/train:1: .*B-GPE"):
        panx.load("de", "train", src)


# --------------------------------------------------------------------------- span QA


def test_squad_keeps_all_gold_answers_and_xquad_splits(tmp_path: Path) -> None:
    ctx = "Denver Broncos won Super Bowl 50 in 2016."
    write(tmp_path / "dev-v1.1.json", squad_json(
        ("q1", "Who won?", [("Denver Broncos", 0), ("Broncos", 7), ("Denver Broncos", 0)]),
        ("q2", "When?", [("2016", 36)]),
        context=ctx,
    ))  # fmt: skip
    write(tmp_path / "train-v1.1.json", squad_json(("t1", "What?", [("Super Bowl 50", 19)]), context=ctx))
    write(tmp_path / "xquad.de.json", squad_json(("q1", "Wer?", [("Broncos", 7)]), context=ctx))
    src = DataSource(data_dir=tmp_path)
    dev = get_task("squad").load("en", "dev", src)
    assert dev[0] == {
        "id": "q1", "context": ctx, "question": "Who won?",
        "answers": {"text": ["Denver Broncos", "Broncos", "Denver Broncos"], "answer_start": [0, 7, 0]},
    }  # fmt: skip
    for row in dev:
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True):
            assert row["context"][start : start + len(text)] == text
    xquad = get_task("xquad")
    assert xquad.load("en", "dev", src) == dev  # English dev of the XQuAD target is SQuAD v1.1 dev
    assert xquad.load("en", "train", src)[0]["id"] == "t1"
    assert xquad.load("de", "test", src)[0]["answers"] == {"text": ["Broncos"], "answer_start": [7]}
    for split in ("train", "dev"):
        with pytest.raises(XitError, match=f"no split '{split}' for language 'de'"):
            xquad.load("de", split, src)
    write(tmp_path / "xquad.zh.json", '{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "1"}]}]}]}')
    with pytest.raises(XitError, match="xquad.zh.json: not SQuAD v1.1 JSON"):
        xquad.load("zh", "test", src)


# --------------------------------------------------------------------------- multiple choice


def test_hellaswag_jsonl(tmp_path: Path) -> None:
    recs = [
        {"ind": 4, "activity_label": "Removing ice", "ctx_a": "A man is on a roof.", "ctx_b": "he",
         "ctx": "A man is on a roof. he", "split": "val", "split_type": "indomain", "label": 3,
         "endings": ["a", "b", "c", "d"], "source_id": "x"},
        {"ind": 5, "ctx_a": "Kids play.", "ctx_b": "they", "label": 0, "endings": ["e", "f", "g", "h"]},
    ]  # fmt: skip
    write(tmp_path / "hellaswag_val.jsonl", "".join(json.dumps(r) + "\n" for r in recs), crlf=True)
    rows = get_task("hellaswag").load("en", "dev", DataSource(data_dir=tmp_path))
    assert rows == [
        {"context": "A man is on a roof. he", "question": "", "choices": ["a", "b", "c", "d"], "label": 3},
        {"context": "Kids play. they", "question": "", "choices": ["e", "f", "g", "h"], "label": 0},
    ]
    with pytest.raises(XitError, match="no split 'test'"):
        get_task("hellaswag").load("en", "test", DataSource(data_dir=tmp_path))


# --------------------------------------------------------------------------- retrieval


def test_tatoeba_alignment_and_laser_codes(tmp_path: Path) -> None:
    write(tmp_path / "tatoeba.cmn-eng.cmn", "我很好。\n你好吗？\n", crlf=True)
    write(tmp_path / "tatoeba.cmn-eng.eng", "I am fine.\nHow are you?\n")
    tatoeba = get_task("tatoeba")
    src = DataSource(data_dir=tmp_path)
    assert tatoeba.load("zh", "test", src) == [
        {"source": ["我很好。", "你好吗？"], "target": ["I am fine.", "How are you?"]}
    ]
    names = [p.name for p in tatoeba.local_files("zh", "test", src)]
    assert names == ["tatoeba.cmn-eng.cmn", "tatoeba.cmn-eng.eng"]
    write(tmp_path / "tatoeba.swh-eng.swh", "a\nb\nc\n")
    write(tmp_path / "tatoeba.swh-eng.eng", "a\nb\n")
    with pytest.raises(XitError, match="not aligned"):
        tatoeba.load("sw", "test", src)
    write(tmp_path / "tatoeba.deu-eng.deu", "Hallo.\n")
    with pytest.raises(XitError, match=r"missing local data file .*tatoeba\.deu-eng\.eng"):
        tatoeba.load("de", "test", src)


@pytest.mark.parametrize("names", ["xtreme", "bucc"])
def test_bucc_sentences_and_gold(tmp_path: Path, names: str) -> None:
    stem = "de-en.dev" if names == "xtreme" else "de-en.sample"  # XTREME renames BUCC's sample to dev
    de = "de-000001\tDas Haus ist rot.\nde-000002\tGuten Tag.\nde-000003\tJa.\n"
    write(tmp_path / f"{stem}.de", de, crlf=True)
    write(tmp_path / f"{stem}.en", "en-000001\tHello.\nen-000002\tThe house is red.\n")
    write(tmp_path / f"{stem}.gold", "de-000001\ten-000002\nde-000002\ten-000001\n")
    bucc = get_task("bucc")
    src = DataSource(data_dir=tmp_path)
    assert bucc.load("de", "dev", src) == [{
        "source_ids": ["de-000001", "de-000002", "de-000003"],
        "source": ["Das Haus ist rot.", "Guten Tag.", "Ja."],
        "target_ids": ["en-000001", "en-000002"],
        "target": ["Hello.", "The house is red."],
        "gold": [["de-000001", "en-000002"], ["de-000002", "en-000001"]],
    }]  # fmt: skip
    names = [p.name for p in bucc.local_files("de", "dev", src)]
    assert names == [f"{stem}.de", f"{stem}.en", f"{stem}.gold"]
    write(tmp_path / f"{stem}.gold", "de-000009\ten-000001\n")
    with pytest.raises(XitError, match=r"\.gold:1: "):
        bucc.load("de", "dev", src)


def test_bucc_test_gold_beside_xtremes_layout(tmp_path: Path) -> None:
    # XTREME's download_bucc18 renames training -> test and deletes *test.gold; BUCC's training.gold may stay.
    write(tmp_path / "fr-en.test.fr", "fr-000001\tOui.\n")
    write(tmp_path / "fr-en.test.en", "en-000001\tYes.\n")
    bucc, src = get_task("bucc"), DataSource(data_dir=tmp_path)
    with pytest.raises(XitError, match=r"fr-en\.test\.gold .*keep BUCC's fr-en\.training\.gold"):
        bucc.load("fr", "test", src)
    write(tmp_path / "fr-en.training.gold", "fr-000001\ten-000001\n")
    assert bucc.load("fr", "test", src)[0]["gold"] == [["fr-000001", "en-000001"]]
    assert [p.name for p in bucc.local_files("fr", "test", src)] == ["fr-en.test.fr", "fr-en.test.en",
                                                                      "fr-en.training.gold"]


def test_bucc_production_path_reads_the_bucc_corpora_not_the_gold_only_hub_configs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    # The archive as BUCC distributes it: fr-en/fr-en.sample.{fr,en,gold}, every sentence of both corpora.
    write(tmp_path / "x/fr-en/fr-en.sample.fr", "fr-000001\tOui.\nfr-000002\tUne phrase sans paire.\n")
    write(tmp_path / "x/fr-en/fr-en.sample.en", "en-000001\tAn unpaired sentence.\nen-000002\tYes.\n")
    write(tmp_path / "x/fr-en/fr-en.sample.gold", "fr-000001\ten-000002\n")
    downloads = FakeDownloads(tmp_path / "x")
    monkeypatch.setattr(datasets, "DownloadManager", downloads)
    monkeypatch.setattr(datasets, "load_dataset", FakeHub({}, scripted=set()))  # any Hub read fails
    assert get_task("bucc").load("fr", "dev") == [{
        "source_ids": ["fr-000001", "fr-000002"], "source": ["Oui.", "Une phrase sans paire."],
        "target_ids": ["en-000001", "en-000002"], "target": ["An unpaired sentence.", "Yes."],
        "gold": [["fr-000001", "en-000002"]],
    }]  # fmt: skip
    assert downloads.urls == ["https://comparable.limsi.fr/bucc2018/bucc2018-fr-en.sample-gold.tar.bz2"]
    assert "bucc18" not in get_task("bucc").source.replace("not google/xtreme:bucc18", "")


# --------------------------------------------------------------------------- errors and hashing


def test_unknown_language_and_missing_files_raise_xit_error(tmp_path: Path) -> None:
    with pytest.raises(XitError, match="has no language 'xx'"):
        get_task("xnli").load("xx", "test", DataSource(data_dir=tmp_path))
    with pytest.raises(XitError, match="has no language 'ja'"):
        get_task("xquad").local_files("ja", "test", DataSource(data_dir=tmp_path))
    cases = [
        ("xnli", "de", "test", "XNLI-1.0/xnli.test.tsv"),
        ("xnli", "en", "train", "MNLI/train.tsv"),
        ("pawsx", "ko", "test", "ko/test_2k.tsv"),
        ("panx", "yo", "train", "yo/train"),
        ("xquad", "th", "test", "xquad.th.json"),
        ("tatoeba", "kk", "test", "tatoeba.kaz-eng.kaz"),
        ("bucc", "zh", "test", "zh-en.test.zh"),
        ("mnli", "en", "dev", "MNLI/dev_matched.tsv"),
        ("squad", "en", "train", "train-v1.1.json"),
        ("hellaswag", "en", "train", "hellaswag_train.jsonl"),
    ]
    for name, lang, split, rel in cases:
        with pytest.raises(XitError, match="missing local data file") as err:
            get_task(name).load(lang, split, DataSource(data_dir=tmp_path))
        assert str(tmp_path / rel) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(XitError, match="missing local data file .*nowhere.tsv"):
        get_task("pawsx").load("de", "dev", DataSource(data_files={"dev": tmp_path / "nowhere.tsv"}))


def test_fingerprint_follows_local_file_contents(tmp_path: Path) -> None:
    f = write(tmp_path / "xquad.de.json", squad_json(("q", "?", [("a", 0)]), context="a b"))
    xquad, src = get_task("xquad"), DataSource(data_dir=tmp_path)
    before = xquad.data_fingerprint([("de", "test")], src)
    assert before == xquad.data_fingerprint([("de", "test")], src)
    write(f, squad_json(("q", "?", [("b", 2)]), context="a b"))
    os.utime(f, (1, 1))  # a new mtime, so the registry's per-file hash cache sees the change
    assert xquad.data_fingerprint([("de", "test")], src) != before


# --------------------------------------------------------------------------- production mapping (no network)


def test_production_loaders_map_hub_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    pair = {"premise": "p", "hypothesis": "h"}
    hub = FakeHub({
        ("nyu-mll/glue", "mnli", "train"): [{**pair, "label": 2, "idx": 0}],
        ("nyu-mll/glue", "mnli", "validation_matched"): [{**pair, "label": 1, "idx": 0}],
        ("facebook/xnli", "sw", "test"): [{**pair, "label": 0}, {**pair, "label": -1}],
        ("google-research-datasets/paws-x", "ja", "validation"): [
            {"id": 1, "sentence1": "a", "sentence2": "b", "label": 1},
            {"id": 2, "sentence1": "NS", "sentence2": "b", "label": 0},
            {"id": 3, "sentence1": "a", "sentence2": "b", "label": -1},
        ],
        ("unimelb-nlp/wikiann", "yo", "train"): [
            {"tokens": ["Ade", "ni"], "ner_tags": [1, 0], "langs": ["yo", "yo"]}
        ],
        ("google/xquad", "xquad.hi", "validation"): [
            {"id": "q", "context": "ab", "question": "?", "answers": {"text": ["b"], "answer_start": [1]}}
        ],
        ("rajpurkar/squad", "plain_text", "validation"): [
            {"id": "s", "title": "T", "context": "ab", "question": "?",
             "answers": {"text": ["a", "ab"], "answer_start": [0, 0]}}
        ],
        ("google/xtreme", "tatoeba.pes", "validation"): [
            {"source_sentence": "سلام\n", "target_sentence": "Hello\n",
             "source_lang": "pes", "target_lang": "eng"}
        ],
        ("Rowan/hellaswag", "default", "validation"): [
            {"ctx_a": "x", "ctx_b": "y", "ctx": "x y", "endings": ["1", "2", "3", "4"], "label": "2"}
        ],
    }, scripted={"Rowan/hellaswag"})  # fmt: skip
    monkeypatch.setattr(datasets, "load_dataset", hub)
    assert get_task("xnli").load("en", "train") == [{"text_a": "p", "text_b": "h", "label": 2}]
    assert get_task("mnli").load("en", "dev") == [{"text_a": "p", "text_b": "h", "label": 1}]
    assert get_task("xnli").load("sw", "test") == [{"text_a": "p", "text_b": "h", "label": 0}]
    assert get_task("pawsx").load("ja", "dev") == [{"text_a": "a", "text_b": "b", "label": 1},
                                                   {"text_a": "NS", "text_b": "b", "label": 0}]
    assert get_task("panx").load("yo", "train") == [{"tokens": ["Ade", "ni"], "tags": ["B-PER", "O"]}]
    assert get_task("xquad").load("hi", "test")[0]["answers"] == {"text": ["b"], "answer_start": [1]}
    assert get_task("xquad").load("en", "dev")[0]["answers"]["text"] == ["a", "ab"]
    assert get_task("tatoeba").load("fa", "test") == [{"source": ["سلام"], "target": ["Hello"]}]
    assert get_task("hellaswag").load("en", "dev") == [
        {"context": "x y", "question": "", "choices": ["1", "2", "3", "4"], "label": 2}
    ]
    # A Hub repo that still holds a loading script is read from its parquet export instead.
    assert hub.calls[-1] == ("Rowan/hellaswag", None, "validation",
                             {"revision": "refs/convert/parquet", "data_dir": "default"})  # fmt: skip


# --------------------------------------------------------------------------- conformance: ../shared/data


def test_shared_xquad(shared_data: Path) -> None:
    files = sorted((shared_data / "xquad").glob("xquad.*.json"))
    assert files, "no xquad.*.json in shared data"
    xquad, ids = get_task("xquad"), None
    for f in files:
        lang = f.name.split(".")[1]
        raw = json.loads(f.read_text(encoding="utf-8"))
        assert len(raw["data"]) == 48
        assert sum(len(a["paragraphs"]) for a in raw["data"]) == 240
        rows = xquad.load(lang, "test", DataSource(data_dir=shared_data / "xquad"))
        assert len(rows) == 1190
        for r in rows:
            assert len(r["answers"]["text"]) == 1 and r["question"]
            (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
            assert r["context"][start : start + len(text)] == text
        ids = ids or [r["id"] for r in rows]
        assert [r["id"] for r in rows] == ids  # same questions, same order, in every language


TATOEBA_PAIRS = {"fin": 1000, "hun": 1000, "deu": 1000, "fra": 1000, "rus": 1000, "cmn": 1000, "jpn": 1000,
                 "ara": 1000, "hin": 1000, "swh": 390, "tur": 1000, "est": 1000, "kaz": 575, "tha": 548}


def test_shared_tatoeba(shared_data: Path) -> None:
    to_xit = {iso: lang for lang, iso in TATOEBA_ISO3.items()}
    tatoeba, src = get_task("tatoeba"), DataSource(data_dir=shared_data / "tatoeba")
    for iso, n in TATOEBA_PAIRS.items():
        (row,) = tatoeba.load(to_xit[iso], "test", src)
        assert len(row["source"]) == len(row["target"]) == n, iso
        assert all(s.strip() for s in row["source"] + row["target"]), iso
    (de,) = tatoeba.load("de", "test", src)
    assert de["source"][0] == "Maria sagte, sie wisse nicht, wo Tom sei."


def test_shared_pawsx_de_dev(shared_data: Path) -> None:
    path = shared_data / "pawsx" / "de.dev.tsv"
    rows = get_task("pawsx").load("de", "dev", DataSource(data_files={"de.dev": path}))
    assert len(rows) == 2000  # every row, as XTREME scores PAWS-X
    assert {r["label"] for r in rows} == {0, 1}
    assert sum("NS" in (r["text_a"], r["text_b"]) for r in rows) == 68


def test_rows_read_while_work_runs_fail_as_work_not_bad_input(tmp_path: Path) -> None:
    # Only a running stage loads rows: a file gone or malformed since the spec was checked is a failure during
    # work (WorkError, exit 1), not bad input (exit 2).
    from xit.errors import WorkError

    (tmp_path / "train-v1.1.json").write_text("{not json", encoding="utf-8")
    src = DataSource(data_dir=tmp_path)
    squad = get_task("squad")
    with pytest.raises(WorkError, match=r"train-v1\.1\.json: not SQuAD v1\.1 JSON"):
        squad.load("en", "train", src)
    with pytest.raises(WorkError, match=r"task 'squad' \(en/dev\): missing local data file .*dev-v1\.1\.json"):
        squad.load("en", "dev", src)
    with pytest.raises(WorkError, match="task 'squad' has no language 'de'"):
        squad.load("de", "dev", src)
    # resolving the files (what the spec check does) is still bad input
    with pytest.raises(XitError, match="missing local data file") as bad:
        squad.local_files("en", "dev", src)
    assert not isinstance(bad.value, WorkError)


def test_a_data_file_gone_when_a_stage_fingerprints_its_training_data_is_a_work_failure(tmp_path: Path) -> None:
    # A stage keys its cached features by the training data's fingerprint: a file gone since the spec was checked
    # (which fingerprinted it for the plan) fails the work (exit 1), as loading its rows does, not as bad input.
    from xit.errors import WorkError
    from xit.stages.common import train_data_id

    write(tmp_path / "train-v1.1.json", squad_json(("q1", "Who?", [("Bob", 0)]), context="Bob ran."))
    src, squad = DataSource(data_dir=tmp_path), get_task("squad")
    planned = squad.data_fingerprint([("en", "train")], src)  # what the plan computes from the checked spec
    assert train_data_id(squad, src) == planned
    (tmp_path / "train-v1.1.json").unlink()
    with pytest.raises(WorkError, match=r"task 'squad' \(en/train\): missing local data file .*train-v1\.1\.json"):
        train_data_id(squad, src, 10, 1)
    with pytest.raises(XitError, match="missing local data file") as bad:  # the plan's own check: bad input
        squad.data_fingerprint([("en", "train")], src)
    assert not isinstance(bad.value, WorkError)
