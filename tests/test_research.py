"""The research recipes (README "Research recipes"): intermediate tasks in any of their languages (`task@lang`),
native Finnish and Hungarian tasks, the `fi-hu` target group, and the report sections that answer each question.

Native tasks are read from the real HuLU and Turku samples in ../shared/data; the tiny end-to-end sweeps run
xit-tiny on the synthetic demo tasks.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from xit.errors import XitError
from xit.plan import build_plan
from xit.report import Score, aggregate
from xit.research import source_group, source_rows, sources_section
from xit.spec import load_spec
from xit.tasks.registry import DataSource, get_task

ROOT = Path(__file__).resolve().parents[1]


def xit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], capture_output=True, text=True, cwd=cwd)


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- native fi/hu tasks, real samples


def test_husst_reads_hulu_files(shared_data: Path) -> None:
    t = get_task("husst")
    assert (t.train_language, t.roles, t.family) == ("hu", frozenset({"intermediate"}), "native")
    src = DataSource(data_dir=shared_data / "hulu")  # the sample keeps the repo name as a prefix
    train, dev = t.load("hu", "train", src), t.load("hu", "dev", src)
    assert len(train) == 9328 and len(dev) == 1165
    assert Counter(r["label"] for r in train) == {2: 3720, 0: 2944, 1: 2664}  # positive, negative, neutral
    assert Counter(r["label"] for r in dev) == {0: 697, 1: 435, 2: 33}
    assert dev[0]["text_a"].startswith("Nos, a Jason elment Manhattanbe") and dev[0]["text_b"] is None
    with pytest.raises(XitError, match="no split 'test'"):
        t.load("hu", "test", src)


def test_hurte_reads_hulu_files(shared_data: Path) -> None:
    t = get_task("hurte")
    src = DataSource(data_files={"train": shared_data / "hulu" / "hurte.rte_train.json",
                                 "dev": shared_data / "hulu" / "hurte.rte_dev.json"})
    train, dev = t.load("hu", "train", src), t.load("hu", "dev", src)
    assert len(train) == 2132 and Counter(r["label"] for r in train) == {1: 1092, 0: 1040}
    assert len(dev) == 243 and Counter(r["label"] for r in dev) == {1: 135, 0: 108}
    assert dev[0]["text_b"] == "Christopher Reeve-nek balesete volt." and dev[0]["label"] == 0


def test_turku_paraphrase_main_label_without_flags(shared_data: Path) -> None:
    t = get_task("turku-paraphrase")
    src = DataSource(data_dir=shared_data / "fi-paraphrase")  # opus-pb-{dev,test}.json
    dev, test = t.load("fi", "dev", src), t.load("fi", "test", src)
    assert len(dev) == 4894 and len(test) == 9636
    # 4, 4<, 4>, 4i, 4s, 4<i, ... are all class "4" (universal paraphrase): 1009 in dev.
    assert Counter(t.labels[r["label"]] for r in dev) == {"1": 1616, "2": 1602, "3": 667, "4": 1009}
    assert (dev[0]["text_a"], dev[0]["text_b"]) == ("Aalto BIZ Prof.", "Silva Mysterium Oy.")


def test_turku_ner_conll_layout(tmp_path: Path) -> None:
    (tmp_path / "conll").mkdir()
    (tmp_path / "conll" / "dev.tsv").write_text("Kävin\tO\nSuomen\tB-ORG\nTeatterin\tI-ORG\n\n"
                                                "Pilvi\tB-PER\nHämäläinen\tI-PER\n:)\tO\n")
    rows = get_task("turku-ner").load("fi", "dev", DataSource(data_dir=tmp_path))
    assert rows == [{"tokens": ["Kävin", "Suomen", "Teatterin"], "tags": ["O", "B-ORG", "I-ORG"]},
                    {"tokens": ["Pilvi", "Hämäläinen", ":)"], "tags": ["B-PER", "I-PER", "O"]}]


def test_native_tasks_name_their_hub_sources() -> None:
    r = xit("tasks", "--family", "native", "--json")
    assert r.returncode == 0, r.stderr
    import json

    got = {t["name"]: t for t in json.loads(r.stdout)}
    assert set(got) == {"husst", "hurte", "turku-paraphrase", "turku-ner"}
    assert got["husst"]["source"].startswith("NYTK/HuSST") and got["hurte"]["source"].startswith("NYTK/HuRTE")
    assert got["turku-paraphrase"]["source"].startswith("TurkuNLP/turku_paraphrase_corpus")
    assert got["turku-ner"]["source"].startswith("TurkuNLP/turku_ner_corpus")
    assert {t["intermediate_languages"][0] for t in got.values()} == {"fi", "hu"}


def test_native_hub_loaders_map_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from xit.tasks import native

    calls = []

    def fake(path: str, config: str | None, split: str) -> list[dict]:
        calls.append((path, config, split))
        return {"NYTK/HuSST": [{"Sent": "Jó film.", "label": "positive"}],
                "TurkuNLP/turku_paraphrase_corpus": [{"text1": "a", "text2": "b", "label": "4>i"}],
                "TurkuNLP/turku_ner_corpus": [{"tokens": ["Pilvi", "."], "ner_tags": [4, 12]}]}[path]

    monkeypatch.setattr(native, "hf_load", fake)
    assert get_task("husst").load("hu", "dev") == [{"text_a": "Jó film.", "text_b": None, "label": 2}]
    assert get_task("turku-paraphrase").load("fi", "train") == [{"text_a": "a", "text_b": "b", "label": 3}]
    assert get_task("turku-ner").load("fi", "test") == [{"tokens": ["Pilvi", "."], "tags": ["B-PER", "O"]}]
    assert calls == [("NYTK/HuSST", None, "validation"), ("TurkuNLP/turku_paraphrase_corpus", "plain", "train"),
                     ("TurkuNLP/turku_ner_corpus", None, "test")]


# --------------------------------------------------------------------------- task@lang


def test_xnli_in_another_language_reads_xnli_mt(tmp_path: Path) -> None:
    mt = tmp_path / "XNLI-MT-1.0" / "multinli"
    mt.mkdir(parents=True)
    (mt / "multinli.train.zh.tsv").write_text("premise\thypo\tlabel\n前提一\t假设一\tcontradictory\n"
                                             "前提二\t假设二\tentailment\n前提三\t\"引号\tneutral\n")
    t = get_task("xnli@zh")
    assert (t.name, t.train_language, t.roles) == ("xnli@zh", "zh", frozenset({"intermediate"}))
    rows = t.load("zh", "train", DataSource(data_dir=tmp_path))
    assert [r["label"] for r in rows] == [2, 0, 1] and rows[2]["text_b"] == '"引号'
    assert get_task("xnli@en") is get_task("xnli")
    # Its own name and data: stages of xnli@zh never share a key with xnli's.
    assert t.data_fingerprint([("zh", "train")], DataSource(data_dir=tmp_path)) != \
        get_task("xnli").data_fingerprint([("zh", "train")], None)


def test_pawsx_in_german_trains_on_translated_train_and_selects_on_real_dev(tmp_path: Path,
                                                                           shared_data: Path) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "translated_train.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\tA\tB\t1\n"
                                                          "2\tNS\tC\t0\n3\tD\tE\t0\n")
    (tmp_path / "de" / "dev_2k.tsv").write_bytes((shared_data / "pawsx" / "de.dev.tsv").read_bytes())
    t = get_task("pawsx@de")
    src = DataSource(data_dir=tmp_path)
    assert [r["label"] for r in t.load("de", "train", src)] == [1, 0]  # the NS row dropped
    dev = t.load("de", "dev", src)
    assert len(dev) == 1932  # 2000 minus the 68 rows with "NS"


def test_intermediate_in_other_language_plans_its_own_stages(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "name: langs\nintermediate: [[], [demo-nli], [demo-nli@agg], [demo-nli@en, demo-mc@vso]]\n"
                           "targets: [demo-para]\n")
    s = load_spec(spec)
    assert s.intermediate == [[], ["demo-nli"], ["demo-nli@agg"], ["demo-nli", "demo-mc@vso"]]
    plan = build_plan(s)
    by_tasks = {tuple(t["name"] for t in st.params["tasks"]): st for st in plan.by_kind("intermediate")}
    assert set(by_tasks) == {(), ("demo-nli",), ("demo-nli@agg",), ("demo-nli", "demo-mc@vso")}
    pig, en = by_tasks[("demo-nli@agg",)].params["tasks"][0], by_tasks[("demo-nli",)].params["tasks"][0]
    assert pig["data"] != en["data"] and pig["hp"] == en["hp"]


# --------------------------------------------------------------------------- the fi-hu group


def test_fi_hu_group_runs_every_xtreme_task_with_finnish_or_hungarian(tmp_path: Path) -> None:
    s = load_spec(_spec(tmp_path, "name: fihu\nmodel: xlm-roberta-large\nintermediate: [[], [mnli], [husst]]\n"
                                  "targets: [fi-hu]\nlanguages: {tydiqa: [fi]}\n"))
    assert s.targets == ["udpos", "panx", "tydiqa", "tatoeba", "udpos-r", "panx-r", "tatoeba-r"]
    assert {t: s.eval_languages(get_task(t)) for t in s.targets} == {
        "udpos": ["fi", "hu"], "panx": ["fi", "hu"], "tydiqa": ["fi"], "tatoeba": ["fi", "hu"],
        "udpos-r": ["fi", "hu"], "panx-r": ["fi", "hu"], "tatoeba-r": ["fi", "hu"]}
    plan = build_plan(s)
    assert {tuple(st.params["languages"]) for st in plan.by_kind("evaluate") + plan.by_kind("retrieval")} <= \
        {("fi", "hu"), ("fi",)}
    # A task named on its own keeps all of its languages.
    s2 = load_spec(_spec(tmp_path, "name: fihu2\ntargets: [fi-hu, panx]\n", "b.yaml"))
    assert s2.eval_languages(get_task("panx")) == list(get_task("panx").languages)


def test_fi_hu_pipeline_validates_and_plans(tmp_path: Path) -> None:
    import yaml

    docs = [d for d in yaml.safe_load_all((ROOT / "pipelines" / "fi-hu.yaml").read_text()) if d]
    text = next(p["value"] for p in docs[0]["spec"]["arguments"]["parameters"] if p["name"] == "spec")
    s = load_spec(_spec(tmp_path, text))
    names = {n for cfg in s.intermediate for n in cfg}
    assert {"husst", "hurte", "turku-paraphrase", "turku-ner", "mnli", "xnli@de", "pawsx@de"} <= names
    plan = build_plan(s)
    assert len(plan.stages) > 50


# --------------------------------------------------------------------------- the source-language section


def _scores(values: dict[str, float], target: str = "panx", seeds: tuple[int, ...] = (1,)) -> list[Score]:
    return [Score(cfg, target, lang, "f1", v + (1.0 if lang == "hu" else 0.0), seed)
            for cfg, v in values.items() for lang in ("fi", "hu") for seed in seeds]


def test_source_groups() -> None:
    assert source_group("[]") is None
    assert source_group("[mnli, squad]") == "English"
    assert source_group("[husst, turku-paraphrase]") == "fi/hu"
    assert source_group("[xnli@zh, pawsx@de]") == "other"
    assert source_group("[mnli, husst]") == "mixed"
    assert source_group("[mnli] n=1000") == "English"


def test_sources_section_compares_english_fi_hu_and_other() -> None:
    tables = aggregate(_scores({"[]": 50.0, "[mnli]": 54.0, "[squad]": 52.0, "[husst]": 57.0, "[turku-ner]": 59.0,
                                "[xnli@de]": 51.0}))
    rows = {r.source: r for r in source_rows(tables)}
    assert list(rows) == ["English", "fi/hu", "other"]
    assert (rows["English"].configs, rows["English"].mean_score, rows["English"].mean_delta) == (2, 53.5, 3.0)
    assert (rows["fi/hu"].best, rows["fi/hu"].best_score, rows["fi/hu"].best_delta) == ("[turku-ner]", 59.5, 9.0)
    assert rows["other"].mean_delta == 1.0
    md, text = sources_section(tables)
    assert md[0] == "## Intermediate-task source languages"
    assert "| target | English | fi/hu | other |" in md
    assert "| panx (f1) | 53.50 (+3.00); best [mnli] 54.50 | 58.50 (+8.00); best [turku-ner] 59.50 | " \
           "51.50 (+1.00); best [xnli@de] 51.50 |" in md
    got = list(csv.DictReader(text.splitlines()))
    assert [r["source"] for r in got] == ["English", "fi/hu", "other"] and got[1]["mean_delta"] == "8.0"
    # Only English sources: no section.
    assert sources_section(aggregate(_scores({"[]": 50.0, "[mnli]": 54.0}))) is None


@pytest.mark.slow
def test_tiny_sweep_reports_source_languages(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "name: tiny-langs\nintermediate: [[], [demo-nli], [demo-nli@agg]]\n"
                           "targets: [demo-para]\nlanguages: {demo-para: [en, agg]}\n"
                           "hparams: {intermediate: {epochs: 1, max_train_examples: 64, max_dev_examples: 32},"
                           " target: {epochs: 1, max_train_examples: 64, max_dev_examples: 32,"
                           " max_eval_examples: 32}}\n")
    r = xit("run", str(spec), "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    md = (tmp_path / "out" / "research.md").read_text()
    assert "## Intermediate-task source languages" in md and "| target | English | other |" in md
    rows = list(csv.DictReader((tmp_path / "out" / "sources.csv").open()))
    assert [(r["target"], r["source"], r["best"]) for r in rows] == [("demo-para", "English", "[demo-nli]"),
                                                                      ("demo-para", "other", "[demo-nli@agg]")]
    results = {(x["intermediate"], x["target"]): x for x in csv.DictReader((tmp_path / "out" / "results.csv").open())}
    for row in rows:  # the section's numbers are the main table's
        assert float(row["mean_score"]) == pytest.approx(float(results[(row["best"], "demo-para")]["score"]), abs=1e-3)
