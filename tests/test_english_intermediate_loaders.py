"""The further English intermediate tasks: ANLI+, QQP, SST-2, CommonsenseQA, Cosmos QA, Social IQa (CCG: test_ccg.py).

Tiny fixtures in each dataset's original distribution format are written to tmp_path and read through
the local loaders; the production (Hub) column mapping is checked against a stand-in for
``datasets.load_dataset`` (no network); predicting the gold answers scores 100 through each task's format.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeHub, gold_score
from original_files import GLUE_MNLI_HEADER, glue_mnli_row, jsonl, tsv, write

from xit.errors import XitError
from xit.tasks import DataSource, get_task

NEW_TASKS = {  # name: (format, labels, num_choices)
    "anli-plus": ("classification", ("entailment", "neutral", "contradiction"), 0),
    "qqp": ("classification", ("not_duplicate", "duplicate"), 0),
    "sst2": ("classification", ("negative", "positive"), 0),
    "commonsenseqa": ("multiple_choice", (), 5),
    "cosmosqa": ("multiple_choice", (), 4),
    "socialiqa": ("multiple_choice", (), 3),
}


# --------------------------------------------------------------------------- registry


def test_registry_entries() -> None:
    for name, (fmt, labels, n) in NEW_TASKS.items():
        t = get_task(name)
        assert (t.family, t.format, t.metric, t.eval_split) == ("english", fmt, "accuracy", "dev"), name
        assert t.languages == ("en",) and t.roles == frozenset({"intermediate"}), name
        assert t.labels == labels and t.num_choices == n, name
        assert t.local_files_fn is not None and {"lr", "epochs", "batch_size", "max_length"} <= t.defaults.keys()
        with pytest.raises(XitError, match="no split 'test'"):
            t.load("en", "test")
        with pytest.raises(XitError, match="has no language 'de'"):
            t.load("de", "train")


def test_cli_tasks_lists_the_new_tasks() -> None:
    proc = subprocess.run([sys.executable, "-m", "xit.cli", "tasks", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = {t["name"]: t for t in json.loads(proc.stdout)}
    for name, (fmt, _, _) in NEW_TASKS.items():
        assert listed[name]["metric"] == "accuracy" and listed[name]["format"] == fmt, name
        assert listed[name]["family"] == "english" and listed[name]["roles"] == ["intermediate"], name


# --------------------------------------------------------------------------- ANLI+


def _anli(uid: str, label: str) -> dict[str, Any]:
    return {"uid": uid, "context": f"ctx {uid}", "hypothesis": f"hyp {uid}", "label": label,
            "model_label": "n", "emturk": False, "genre": "wiki", "reason": "", "tag": ""}  # fmt: skip


def _write_anli_plus(d: Path) -> None:
    for r in (1, 2, 3):
        write(d / f"anli_v1.0/R{r}/train.jsonl", jsonl(_anli(f"t{r}a", "e"), _anli(f"t{r}b", "c")), crlf=r == 2)
        write(d / f"anli_v1.0/R{r}/dev.jsonl", jsonl(_anli(f"d{r}", "n")))
    write(d / "MNLI/train.tsv", tsv(
        GLUE_MNLI_HEADER, glue_mnli_row(0, "mnli p0", "mnli h0", "neutral"),
        glue_mnli_row(1, "mnli p1", "mnli h1", "-"),
    ))  # fmt: skip
    snli = [
        {"gold_label": g, "sentence1": f"snli p{i}", "sentence2": f"snli h{i}", "pairID": f"p{i}"}
        for i, g in enumerate(["contradiction", "-", "entailment"])
    ]
    write(d / "snli_1.0/snli_1.0_train.jsonl", jsonl(*snli))
    write(d / "nli_fever/train_fitems.jsonl", jsonl(
        {"cid": 1, "fid": "a", "query": "claim 1", "context": "evidence 1", "label": "SUPPORTS"},
        {"cid": 2, "fid": "b", "query": "claim 2", "context": "evidence 2", "label": "REFUTES"},
        {"cid": 3, "fid": "c", "query": "claim 3", "context": "evidence 3", "label": "NOT ENOUGH INFO"},
    ))  # fmt: skip


def test_anli_plus_mixture_from_original_files(tmp_path: Path) -> None:
    _write_anli_plus(tmp_path)
    task, src = get_task("anli-plus"), DataSource(data_dir=tmp_path)
    train = task.load("en", "train", src)
    # 3 rounds x 2 ANLI + 1 MNLI (the "-" row dropped) + 2 SNLI (the "-" row dropped) + 3 FEVER-NLI.
    assert len(train) == 6 + 1 + 2 + 3
    by_source = {k: [r for r in train if r["text_a"].startswith(k)] for k in ("ctx", "mnli", "snli", "evidence")}
    assert [len(v) for v in by_source.values()] == [6, 1, 2, 3]
    assert train[0] == {"text_a": "ctx t1a", "text_b": "hyp t1a", "label": 0}
    assert [r["label"] for r in by_source["ctx"]] == [0, 2] * 3
    assert by_source["mnli"] == [{"text_a": "mnli p0", "text_b": "mnli h0", "label": 1}]
    assert [(r["text_a"], r["label"]) for r in by_source["snli"]] == [("snli p0", 2), ("snli p2", 0)]
    # FEVER-NLI: premise = the evidence (context), hypothesis = the claim (query); S/R/NEI -> e/c/n.
    assert by_source["evidence"] == [
        {"text_a": "evidence 1", "text_b": "claim 1", "label": 0},
        {"text_a": "evidence 2", "text_b": "claim 2", "label": 2},
        {"text_a": "evidence 3", "text_b": "claim 3", "label": 1},
    ]
    dev = task.load("en", "dev", src)
    assert dev == [{"text_a": f"ctx d{r}", "text_b": f"hyp d{r}", "label": 1} for r in (1, 2, 3)]
    names = [p.relative_to(tmp_path).as_posix() for p in task.local_files("en", "train", src)]
    assert names == ["anli_v1.0/R1/train.jsonl", "anli_v1.0/R2/train.jsonl", "anli_v1.0/R3/train.jsonl",
                     "MNLI/train.tsv", "snli_1.0/snli_1.0_train.jsonl", "nli_fever/train_fitems.jsonl"]  # fmt: skip
    assert len(task.local_files("en", "dev", src)) == 3
    assert gold_score(get_task("anli-plus"), train) == {"accuracy": 100.0}


def test_anli_plus_missing_component_and_overrides(tmp_path: Path) -> None:
    _write_anli_plus(tmp_path)
    (tmp_path / "snli_1.0/snli_1.0_train.jsonl").unlink()
    task = get_task("anli-plus")
    with pytest.raises(XitError, match="missing local data file") as err:
        task.load("en", "train", DataSource(data_dir=tmp_path))
    assert str(tmp_path / "snli_1.0/snli_1.0_train.jsonl") in str(err.value) and "\n" not in str(err.value)
    moved = write(tmp_path / "elsewhere/snli.jsonl", jsonl(
        {"gold_label": "neutral", "sentence1": "snli moved", "sentence2": "h"}
    ))  # fmt: skip
    src = DataSource(data_dir=tmp_path, data_files={"train.snli": moved})
    assert [r for r in task.load("en", "train", src) if r["text_a"] == "snli moved"] == [
        {"text_a": "snli moved", "text_b": "h", "label": 1}
    ]
    (tmp_path / "anli_v1.0/R3/dev.jsonl").unlink()
    with pytest.raises(XitError, match=r"missing local data file .*R3/dev\.jsonl"):
        task.load("en", "dev", DataSource(data_dir=tmp_path))
    with pytest.raises(XitError, match="component 'anli_r1'"):
        task.load("en", "dev", DataSource(data_files={"dev": tmp_path / "x.jsonl"}))


# --------------------------------------------------------------------------- QQP, SST-2


def test_qqp_and_sst2_glue_tsv(tmp_path: Path) -> None:
    write(tmp_path / "QQP/dev.tsv", tsv(
        ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        ("0", "1", "2", 'What is "AI"?', "What's AI?", "1"),
        ("1", "3", "4", "How old are you?", "Where do you live?", "0"),
        ("2", "5", "6", "broken line"),
    ), crlf=True)  # fmt: skip
    write(tmp_path / "SST-2/train.tsv", tsv(
        ("sentence", "label"), ("a gorgeous film ", "1"), ("dull , dull , dull", "0"),
    ))  # fmt: skip
    src = DataSource(data_dir=tmp_path)
    qqp = get_task("qqp").load("en", "dev", src)
    assert qqp == [
        {"text_a": 'What is "AI"?', "text_b": "What's AI?", "label": 1},
        {"text_a": "How old are you?", "text_b": "Where do you live?", "label": 0},
    ]
    sst2 = get_task("sst2").load("en", "train", src)
    assert sst2 == [
        {"text_a": "a gorgeous film ", "text_b": None, "label": 1},
        {"text_a": "dull , dull , dull", "text_b": None, "label": 0},
    ]
    assert gold_score(get_task("qqp"), qqp) == gold_score(get_task("sst2"), sst2) == {"accuracy": 100.0}
    write(tmp_path / "SST-2/dev.tsv", tsv(("text", "y"), ("x", "1")))
    with pytest.raises(XitError, match="expected columns sentence, label"):
        get_task("sst2").load("en", "dev", src)


# --------------------------------------------------------------------------- multiple choice


def _csqa(i: int, key: str, order: str = "ABCDE") -> dict[str, Any]:
    return {"answerKey": key, "id": f"q{i}", "question": {
        "question_concept": "c", "stem": f"Where is thing {i}?",
        "choices": [{"label": lab, "text": f"place {lab.lower()}"} for lab in order],
    }}  # fmt: skip


def test_commonsenseqa_jsonl(tmp_path: Path) -> None:
    write(tmp_path / "dev_rand_split.jsonl", jsonl(_csqa(1, "C"), _csqa(2, "A", order="EDCBA")), crlf=True)
    rows = get_task("commonsenseqa").load("en", "dev", DataSource(data_dir=tmp_path))
    choices = [f"place {c}" for c in "abcde"]
    assert rows == [
        {"context": "Where is thing 1?", "question": "", "choices": choices, "label": 2},
        {"context": "Where is thing 2?", "question": "", "choices": choices, "label": 0},
    ]
    assert gold_score(get_task("commonsenseqa"), rows) == {"accuracy": 100.0}
    write(tmp_path / "train_rand_split.jsonl", jsonl(_csqa(3, "F")))
    with pytest.raises(XitError, match="answerKey 'F'"):
        get_task("commonsenseqa").load("en", "train", DataSource(data_dir=tmp_path))


def _cosmos_csv(*records: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, ["id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label"])
    w.writeheader()
    for r in records:
        w.writerow(r)
    return out.getvalue()


def _cosmos(i: int, label: int) -> dict[str, Any]:
    return {"id": f"c{i}", "context": f'Story {i}, with "quotes", commas\nand a newline.', "question": f"Why {i}?",
            **{f"answer{k}": f"ans {i}.{k}" for k in range(4)}, "label": label}  # fmt: skip


def test_cosmosqa_csv_and_jsonl(tmp_path: Path) -> None:
    write(tmp_path / "valid.csv", _cosmos_csv(_cosmos(1, 3), _cosmos(2, 0)))
    rows = get_task("cosmosqa").load("en", "dev", DataSource(data_dir=tmp_path))
    assert rows[0] == {
        "context": 'Story 1, with "quotes", commas\nand a newline.', "question": "Why 1?",
        "choices": ["ans 1.0", "ans 1.1", "ans 1.2", "ans 1.3"], "label": 3,
    }  # fmt: skip
    assert [r["label"] for r in rows] == [3, 0]
    assert gold_score(get_task("cosmosqa"), rows) == {"accuracy": 100.0}
    write(tmp_path / "train.jsonl", jsonl(_cosmos(5, 1)))  # no train.csv: the jsonl form is read
    assert [r["choices"][1] for r in get_task("cosmosqa").load("en", "train", DataSource(data_dir=tmp_path))] == [
        "ans 5.1"
    ]


def _siqa(i: int) -> dict[str, Any]:
    return {"context": f"Tracy did {i}.", "question": "What will Tracy want?",
            "answerA": f"a{i}", "answerB": f"b{i}", "answerC": f"c{i}"}  # fmt: skip


def test_socialiqa_jsonl_and_labels_file(tmp_path: Path) -> None:
    write(tmp_path / "socialIQa_v1.4_dev.jsonl", jsonl(_siqa(1), _siqa(2), _siqa(3)))
    write(tmp_path / "socialIQa_v1.4_dev-labels.lst", "3\n1\n2\n", crlf=True)
    task, src = get_task("socialiqa"), DataSource(data_dir=tmp_path)
    rows = task.load("en", "dev", src)
    assert rows[0] == {"context": "Tracy did 1.", "question": "What will Tracy want?",
                       "choices": ["a1", "b1", "c1"], "label": 2}  # fmt: skip
    assert [r["label"] for r in rows] == [2, 0, 1]
    assert [p.name for p in task.local_files("en", "dev", src)] == [
        "socialIQa_v1.4_dev.jsonl", "socialIQa_v1.4_dev-labels.lst"
    ]  # fmt: skip
    assert gold_score(get_task("socialiqa"), rows) == {"accuracy": 100.0}
    write(tmp_path / "socialIQa_v1.4_trn.jsonl", jsonl(_siqa(1), _siqa(2)))
    with pytest.raises(XitError, match=r"missing local data file .*socialIQa_v1\.4_trn-labels\.lst"):
        task.load("en", "train", src)
    write(tmp_path / "socialIQa_v1.4_trn-labels.lst", "1\n")
    with pytest.raises(XitError, match="1 labels for 2 records"):
        task.load("en", "train", src)


def test_missing_files_name_the_default_path(tmp_path: Path) -> None:
    cases = [
        ("anli-plus", "train", "anli_v1.0/R1/train.jsonl"),
        ("qqp", "train", "QQP/train.tsv"),
        ("sst2", "dev", "SST-2/dev.tsv"),
        ("commonsenseqa", "train", "train_rand_split.jsonl"),
        ("cosmosqa", "dev", "valid.csv"),
        ("socialiqa", "train", "socialIQa_v1.4_trn.jsonl"),
    ]
    for name, split, rel in cases:
        with pytest.raises(XitError, match="missing local data file") as err:
            get_task(name).load("en", split, DataSource(data_dir=tmp_path))
        assert str(tmp_path / rel) in str(err.value) and "\n" not in str(err.value), name


# --------------------------------------------------------------------------- production mapping (no network)


def test_fever_nli_hub_orientation_matches_the_local_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same FEVER-NLI item read from the release's jsonl (query = claim, context = evidence) and from
    pietrolesci/nli_fever (which puts the claim under "premise") gives the same row: premise = evidence."""
    import datasets

    claim, evidence = "Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.", (
        "Nikolaj Coster-Waldau . He then played Detective John Amsterdam in the short-lived Fox television series "
        "New Amsterdam ( 2008 ) .")
    _write_anli_plus(tmp_path)
    write(tmp_path / "nli_fever/train_fitems.jsonl", jsonl(
        {"cid": 75397, "fid": "x", "query": claim, "context": evidence, "label": "SUPPORTS"}))
    local = get_task("anli-plus").load("en", "train", DataSource(data_dir=tmp_path))[-1]
    hub = FakeHub({
        **{("facebook/anli", "plain_text", f"train_r{r}"): [] for r in (1, 2, 3)},
        ("nyu-mll/glue", "mnli", "train"): [],
        ("stanfordnlp/snli", "plain_text", "train"): [],
        ("pietrolesci/nli_fever", None, "train"): [
            {"cid": 75397, "fid": "x", "verifiable": 1, "fever_gold_label": "SUPPORTS", "premise": claim,
             "hypothesis": evidence, "label": 0}],
    }, scripted=set())  # fmt: skip
    monkeypatch.setattr(datasets, "load_dataset", hub)
    assert get_task("anli-plus").load("en", "train") == [local]
    assert local == {"text_a": evidence, "text_b": claim, "label": 0}


def test_production_loaders_map_hub_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def nli(tag: str, *labels: int) -> list[dict[str, Any]]:
        return [{"premise": f"{tag} p{i}", "hypothesis": f"{tag} h{i}", "label": lab} for i, lab in enumerate(labels)]

    anli = {("facebook/anli", "plain_text", f"{s}_r{r}"): [{"uid": "u", **x} for x in nli(f"{s}{r}", 0, 2)]
            for s in ("train", "dev") for r in (1, 2, 3)}  # fmt: skip
    hub = FakeHub({
        **anli,
        ("nyu-mll/glue", "mnli", "train"): [{**x, "idx": 0} for x in nli("mnli", 1, -1)],
        ("stanfordnlp/snli", "plain_text", "train"): nli("snli", 2, -1, 0),
        ("pietrolesci/nli_fever", None, "train"): [
            {"cid": 1, "fid": "f", "verifiable": 1, "fever_gold_label": "SUPPORTS", **x} for x in nli("fever", 0)
        ],
        ("nyu-mll/glue", "qqp", "validation"): [
            {"question1": "q1", "question2": "q2", "label": 1, "idx": 0},
            {"question1": "q3", "question2": "q4", "label": -1, "idx": 1},
        ],
        ("nyu-mll/glue", "sst2", "train"): [{"sentence": "great", "label": 1, "idx": 0}],
        ("tau/commonsense_qa", None, "validation"): [
            {"id": "x", "question": "Q?", "question_concept": "c", "answerKey": "B",
             "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["a", "b", "c", "d", "e"]}},
        ],
    }, scripted={"allenai/cosmos_qa", "allenai/social_i_qa"})  # fmt: skip
    export = "refs%2Fconvert%2Fparquet"
    parquet = {  # the Hub's parquet export of the two script-based repos, read as plain parquet files
        f"hf://datasets/allenai/cosmos_qa@{export}/default/train/*.parquet": [
            {"id": "c", "context": "ctx", "question": "q", "answer0": "0", "answer1": "1", "answer2": "2",
             "answer3": "3", "label": 2},
        ],
        f"hf://datasets/allenai/social_i_qa@{export}/default/validation/*.parquet": [
            {"context": "ctx", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "label": "3"},
        ],
    }

    def load_dataset(path: str, name: str | None = None, split: str | None = None, **kw: Any) -> Any:
        if path != "parquet":
            return hub(path, name, split, **kw)
        assert name is None and list(kw) == ["data_files"] and list(kw["data_files"]) == [split]
        hub.calls.append(("parquet", kw["data_files"][split], split, {}))
        return parquet[kw["data_files"][split]]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    train = get_task("anli-plus").load("en", "train")
    assert [r["text_a"] for r in train] == [
        "train1 p0", "train1 p1", "train2 p0", "train2 p1", "train3 p0", "train3 p1",
        "mnli p0", "snli p0", "snli p2", "fever h0",
    ]  # fmt: skip
    # pietrolesci/nli_fever holds the claim in "premise" and the evidence in "hypothesis": swapped back.
    assert train[-1] == {"text_a": "fever h0", "text_b": "fever p0", "label": 0}
    dev = get_task("anli-plus").load("en", "dev")
    assert [(r["text_a"], r["label"]) for r in dev] == [(f"dev{r} p{i}", lab) for r in (1, 2, 3) for i, lab in
                                                        ((0, 0), (1, 2))]  # fmt: skip
    assert get_task("qqp").load("en", "dev") == [{"text_a": "q1", "text_b": "q2", "label": 1}]
    assert get_task("sst2").load("en", "train") == [{"text_a": "great", "text_b": None, "label": 1}]
    assert get_task("commonsenseqa").load("en", "dev") == [
        {"context": "Q?", "question": "", "choices": ["a", "b", "c", "d", "e"], "label": 1}
    ]
    assert get_task("cosmosqa").load("en", "train") == [
        {"context": "ctx", "question": "q", "choices": ["0", "1", "2", "3"], "label": 2}
    ]
    assert get_task("socialiqa").load("en", "dev") == [
        {"context": "ctx", "question": "q", "choices": ["a", "b", "c"], "label": 2}
    ]
    # Script-based repos (datasets >= 4 refuses them) are never asked for: their parquet export is read.
    assert not [c for c in hub.calls if c[0] in ("allenai/cosmos_qa", "allenai/social_i_qa")]
    assert hub.calls[-2:] == [("parquet", f"hf://datasets/allenai/cosmos_qa@{export}/default/train/*.parquet",
                               "train", {}),
                              ("parquet", f"hf://datasets/allenai/social_i_qa@{export}/default/validation/*.parquet",
                               "validation", {})]  # fmt: skip
    assert all("parquet export" in get_task(t).source for t in ("cosmosqa", "socialiqa"))  # as `xit tasks` shows
