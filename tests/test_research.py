"""The research recipes (README "Research recipes"): intermediate tasks in any of their languages (`task@lang`),
native Finnish and Hungarian tasks, the `fi-hu` target group, and the report sections that answer each question.

Native tasks are read from the real HuLU and Turku samples in ../shared/data; the tiny end-to-end sweeps run
xit-tiny on the synthetic demo tasks.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

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
    got = {t["name"]: t for t in json.loads(r.stdout)}
    assert set(got) == {"husst", "hurte", "turku-paraphrase", "turku-ner"}
    assert got["husst"]["source"].startswith("NYTK/HuSST") and got["hurte"]["source"].startswith("NYTK/HuRTE")
    assert got["turku-paraphrase"]["source"].startswith("TurkuNLP/turku_paraphrase_corpus")
    assert got["turku-ner"]["source"].startswith("TurkuNLP/turku_ner_corpus")
    assert {t["intermediate_languages"][0] for t in got.values()} == {"fi", "hu"}
    r = xit("tasks", "--family", "xtreme", "--json")
    xcopa = next(t for t in json.loads(r.stdout) if t["name"] == "xcopa")
    assert xcopa["slices"]["unseen-languages"]["values"] == ["ht", "qu"]


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
    assert [r["text_a"] for r in t.load("de", "train", src)] == ["A", "NS", "D"]  # every row, as XTREME
    dev = t.load("de", "dev", src)
    assert len(dev) == 2000 and dev[0]["label"] in (0, 1)


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
    assert got[0]["model"] == ""
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


# --------------------------------------------------------------------------- intermediate sizes and slices


def test_nested_subsets_are_prefixes_of_one_seeded_order() -> None:
    from xit.stages.intermediate import nested_subset

    rows = [{"i": i} for i in range(500)]
    small, mid, full = (nested_subset(rows, n, 3, "mnli") for n in (10, 100, None))
    assert mid[:10] == small and len(mid) == 100 and full == rows
    assert nested_subset(rows, 100, 3, "mnli") == mid  # repeatable
    assert nested_subset(rows, 100, 4, "mnli") != mid and nested_subset(rows, 100, 3, "squad") != mid
    assert sorted(r["i"] for r in nested_subset(rows, 1000, 3, "mnli")) == list(range(500))  # capped at all


def test_sizes_are_a_sweep_axis_in_the_stage_keys(tmp_path: Path) -> None:
    base = "name: sizes\nintermediate: [[], [demo-nli, demo-mc]]\ntargets: [demo-para]\nseeds: [1, 2]\n"
    plain = build_plan(load_spec(_spec(tmp_path, base, "a.yaml")))
    sized = build_plan(load_spec(_spec(tmp_path, base + "intermediate_sizes: [full, 4000, 1000]\n", "b.yaml")))
    inter = sized.by_kind("intermediate")
    assert len(inter) == 1 + 3 * 2  # the base encoder once; three sizes x two seeds
    sizes = sorted({tuple(t.get("size") for t in s.params["tasks"]) for s in inter if s.params["tasks"]},
                   key=str)
    assert sizes == [(1000, 1000), (4000, 4000), (None, None)]  # each task of the mixture capped
    # The full size is the sweep without sizes: same stages, shared by key.
    assert {s.key for s in plain.stages if s.kind != "report"} <= {s.key for s in sized.stages}
    entries = sized.by_kind("report")[0].params["entries"]
    assert [e["intermediate"] for e in entries if e["seed"] == 1] == \
        ["[]", "[demo-nli, demo-mc] n=1000", "[demo-nli, demo-mc] n=4000", "[demo-nli, demo-mc]"]
    assert {(e["configuration"], e["size"]) for e in entries} == {
        ("[]", "full"), ("[demo-nli, demo-mc]", 1000), ("[demo-nli, demo-mc]", 4000), ("[demo-nli, demo-mc]", "full")}
    # intermediate 7; target and evaluate 8 each (the base encoder's for both seeds, the six others' for theirs)
    assert len(sized.stages) == 7 + 8 + 8 + 1


def test_t_interval_and_curve_points() -> None:
    from xit.research import curve_points, t_interval

    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 / 3 ** 0.5, abs=1e-3) and mean - low == high - mean
    assert t_interval([5.0]) == (5.0, 5.0, 5.0)
    sl = {"unseen-languages": {"kind": "languages", "values": ["ht", "qu"]},
          "new-genres": {"kind": "genre", "values": ["oup"]}}
    entries, metrics = [], {}
    for seed, (et, ht, qu, oup) in {1: (60.0, 50.0, 52.0, 40.0), 2: (62.0, 54.0, 56.0, 44.0)}.items():
        key = f"k{seed}"
        entries.append({"key": key, "target": "xcopa", "metric": "accuracy", "seed": seed, "intermediate": "[m] n=10",
                        "configuration": "[m]", "size": 10, "slices": sl})
        metrics[key] = {"languages": {"et": {"accuracy": et}, "ht": {"accuracy": ht}, "qu": {"accuracy": qu}},
                        "slices": {"new-genres": {"et": {"accuracy": oup, "n": 3}, "ht": {"n": 0}}}}
    pts = {p.slice: p for p in curve_points(entries, metrics)}
    assert list(pts) == ["all", "new-genres", "unseen-languages"]
    assert pts["all"].score == pytest.approx(55.666667) and pts["all"].n_seeds == 2
    assert pts["unseen-languages"].score == 53.0  # seeds 51, 55
    assert pts["unseen-languages"].high - 53.0 == pytest.approx(12.706 * 2 ** 0.5 * 2 / 2 ** 0.5)
    assert pts["new-genres"].score == 42.0  # the language with no row of the genre does not count


def _scaling_entries(models: tuple[str, ...]) -> tuple[list[dict], dict[str, dict]]:
    """Evaluations of a sweep over sizes with a language slice, per base model (labels "... model=<id>" when
    there are several), two seeds: the baseline scores 50 (model b: 40) plus the seed on every language, [mnli]
    adds 2 at 16 examples and 4 in full, twice that for model b."""
    sl = {"uralic": {"kind": "languages", "values": ["fi", "hu"]}}
    entries, metrics = [], {}
    for i, m in enumerate(models):
        suffix = f" model={m}" if len(models) > 1 else ""
        for cfg, size, gain in (("[]", "full", 0.0), ("[mnli]", 16, 2.0), ("[mnli]", "full", 4.0)):
            label = cfg + ("" if size == "full" else f" n={size}") + suffix
            for seed in (1, 2):
                key = f"{label}/{seed}"
                value = 50.0 - 10 * i + gain * (1 + i) + seed
                metrics[key] = {"languages": {lang: {"accuracy": value + (1.0 if lang == "hu" else 0.0)}
                                              for lang in ("en", "fi", "hu")}}
                entries.append({"key": key, "intermediate": label, "target": "xnli", "seed": seed,
                                "metric": "accuracy", "configuration": cfg + suffix, "size": size, "slices": sl,
                                **({"model": m} if suffix else {})})
    return entries, metrics


def test_scaling_section_names_the_baseline_in_words() -> None:
    from xit.research import scaling_section

    md, text = scaling_section(*_scaling_entries(("xlm-roberta-large",)), "[]")
    prose = md[2]
    assert "*none (baseline)*: the base encoder without intermediate training (`[]` in the main table), so it " \
           "has no training size" in prose
    assert "| intermediate | size | all | uralic |" in md
    # all: mean of 51, 52, 51 (seed 1) and 52, 53, 52 (seed 2); uralic: fi and hu only.
    assert md[md.index("| intermediate | size | all | uralic |") + 2].startswith(
        "| none (baseline) | — | 51.83 [") and "| [mnli] | 16 | 53.83 [" in "\n".join(md)
    rows = list(csv.DictReader(text.splitlines()))
    assert [(x["model"], x["intermediate"], x["size"]) for x in rows if x["slice"] == "all"] == [
        ("", "[]", "full"), ("", "[mnli]", "16"), ("", "[mnli]", "full")]  # the CSV keeps the main table's labels


def test_scaling_section_and_curves_per_model(tmp_path: Path) -> None:
    from xit.research import plot_curves, scaling_section

    entries, metrics = _scaling_entries(("a", "b"))
    md, text = scaling_section(entries, metrics, "[]", tmp_path / "scaling.png")
    assert "each base model without intermediate training (`[] model=<id>` in the main table)" in md[2]
    assert "| intermediate | model | size | all | uralic |" in md
    body = "\n".join(md)
    # Per model, its own rows: the baseline first; b's [mnli] gains twice a's.
    order = [line.split(" | ")[:3] for line in md if line.startswith(("| none", "| [mnli]"))]
    assert order == [["| none (baseline)", "a", "—"], ["| [mnli]", "a", "16"], ["| [mnli]", "a", "full"],
                     ["| none (baseline)", "b", "—"], ["| [mnli]", "b", "16"], ["| [mnli]", "b", "full"]]
    assert "| [mnli] | a | full | 55.83 [" in body and "| [mnli] | b | full | 49.83 [" in body
    rows = {(x["model"], x["slice"], x["intermediate"], x["size"]): float(x["score"])
            for x in csv.DictReader(text.splitlines())}
    assert rows[("a", "all", "[] model=a", "full")] == pytest.approx(51.8333, abs=1e-3)
    assert rows[("b", "all", "[] model=b", "full")] == pytest.approx(41.8333, abs=1e-3)
    assert rows[("b", "uralic", "[mnli] model=b", "16")] == pytest.approx(46.0, abs=1e-3)  # 40 + 4 + 1.5 + 0.5
    assert len(rows) == 12
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    # The plot: per panel, a baseline and a curve per model, each with that model's numbers.
    from xit.research import curve_points

    drawn = {(t, sl): lines for t, sl, lines in plot_curves(curve_points(entries, metrics), "[]", io.BytesIO())}
    assert list(drawn) == [("xnli", "all"), ("xnli", "uralic")]
    lines = drawn["xnli", "all"]
    assert set(lines) == {("a", "baseline"), ("a", "[mnli]"), ("b", "baseline"), ("b", "[mnli]")}
    assert [(size, round(score, 4)) for size, score, _, _ in lines["b", "[mnli]"]] == [(16, 45.8333), ("full", 49.8333)]
    assert [round(score, 4) for _, score, _, _ in lines["a", "baseline"]] == [51.8333]


def _xnli_files(root: Path) -> None:
    """XNLI-1.0 dev/test and GLUE MNLI train in their original column layouts, a few rows each."""
    genres = ("fiction", "oup", "travel", "letters")
    head = ("language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
            "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre")
    labels = ("entailment", "neutral", "contradiction")
    for split in ("dev", "test"):
        lines = ["\t".join(head)]
        for lang in ("en", "de"):
            for i in range(8):
                lines.append("\t".join((lang, labels[i % 3], "", "", "", "", f"Ana painted the river {i} .",
                                        f"Ben sold a kettle {i % 3} .", str(i), f"{i}e", genres[i % 4])))
        (root / "XNLI-1.0").mkdir(parents=True, exist_ok=True)
        (root / "XNLI-1.0" / f"xnli.{split}.tsv").write_text("\n".join(lines) + "\n")
    glue = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
            "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")
    rows = ["\t".join(glue)] + ["\t".join((str(i), "1", f"{i}n", "fiction", "", "", "", "", f"Omar moved {i} .",
                                           f"Rosa found {i % 3} .", labels[i % 3], labels[i % 3])) for i in range(12)]
    (root / "MNLI").mkdir()
    (root / "MNLI" / "train.tsv").write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_tiny_sweep_draws_size_curves_per_target_and_slice(tmp_path: Path) -> None:
    _xnli_files(tmp_path / "xnli")
    spec = _spec(tmp_path, "name: tiny-scaling\nintermediate: [[], [demo-nli]]\nintermediate_sizes: [16, full]\n"
                           "targets: [demo-para, xnli]\nseeds: [1, 2]\nlanguages: {xnli: [en, de]}\n"
                           "slices: {demo-para: [english, rewritten], xnli: [mnli-genres, new-genres]}\n"
                           "data: {xnli: {data_dir: xnli}}\n"
                           "hparams: {intermediate: {epochs: 1, max_train_examples: 48, max_dev_examples: 16},"
                           " target: {epochs: 1, max_train_examples: 32, max_dev_examples: 16,"
                           " max_eval_examples: 24}}\n")
    r = xit("plan", str(spec))
    assert r.returncode == 0 and "stages" in r.stdout
    out = tmp_path / "out"
    r = xit("run", str(spec), "--store", str(tmp_path / "store"), "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader((out / "scaling.csv").open()))
    got = {(x["target"], x["slice"], x["intermediate"], x["size"]): x for x in rows}
    sizes = ["16", "full"]
    for target, slices in (("demo-para", ["all", "english", "rewritten"]), ("xnli", ["all", "mnli-genres",
                                                                                     "new-genres"])):
        assert [(x["slice"], x["intermediate"], x["size"]) for x in rows if x["target"] == target] == \
            [(sl, c, s) for sl in slices for c, ss in (("[]", ["full"]), ("[demo-nli]", sizes)) for s in ss]
    for x in rows:
        assert x["n_seeds"] == "2" and float(x["low"]) <= float(x["score"]) <= float(x["high"])
    # The curves' numbers are the main report's: "all" is the results.csv score, a language slice the
    # per-language score, at every size.
    results = {(x["intermediate"], x["target"]): float(x["score"])
               for x in csv.DictReader((out / "results.csv").open())}
    per_lang = {(x["intermediate"], x["target"], x["language"]): float(x["score"])
                for x in csv.DictReader((out / "per_language.csv").open())}
    for size, label in (("16", "[demo-nli] n=16"), ("full", "[demo-nli]")):
        assert float(got[("demo-para", "all", "[demo-nli]", size)]["score"]) == \
            pytest.approx(results[(label, "demo-para")], abs=1e-3)
        assert float(got[("demo-para", "english", "[demo-nli]", size)]["score"]) == \
            pytest.approx(per_lang[(label, "demo-para", "en")], abs=1e-3)
    # Genre slices are scored on their rows: 8 rows per language, genres cycling over four, so 4 of MNLI's
    # (fiction, travel) and 4 new (oup, letters) per language.
    plan = build_plan(load_spec(spec))
    ev = next(s for s in plan.by_kind("evaluate") if s.params["task"] == "xnli")
    assert ev.params["slices"] == {"mnli-genres": ["fiction", "government", "slate", "telephone", "travel"],
                                   "new-genres": ["facetoface", "letters", "nineeleven", "oup", "verbatim"]}
    import json

    store = tmp_path / "store" / "stages" / ev.key
    m = json.loads((store / json.loads((store / "MANIFEST.json").read_text())["attempt"] / "metrics.json").read_text())
    assert {lang: v["n"] for lang, v in m["slices"]["new-genres"].items()} == {"en": 4, "de": 4}
    assert {lang: v["n"] for lang, v in m["slices"]["mnli-genres"].items()} == {"en": 4, "de": 4}
    md = (out / "research.md").read_text()
    assert "## Intermediate training size and evaluation slices" in md and "### xnli" in md
    assert "| intermediate | size | all | english | rewritten |" in md
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- base models as a sweep axis


def test_models_axis_never_shares_a_stage_between_models(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = _spec(tmp_path, f"name: models\nmodels: [xit-tiny, {tiny_model_dir}]\n"
                           "intermediate: [[], [demo-nli]]\ntargets: [demo-para, demo-tatoeba]\n")
    s = load_spec(spec)
    assert s.model_list() == ["xit-tiny", str(tiny_model_dir)]
    plan = build_plan(s)
    bases = [st for st in plan.by_kind("intermediate") if not st.params["tasks"]]
    assert [b.params["model"] for b in bases] == ["xit-tiny", str(tiny_model_dir)]
    assert bases[1].params["model_fingerprint"].startswith("local:")

    def descendants(key: str) -> set[str]:
        out, todo = set(), [key]
        while todo:
            k = todo.pop()
            for st in plan.stages:
                if k in st.inputs and st.kind != "report" and st.key not in out:
                    out.add(st.key)
                    todo.append(st.key)
        return out | {key}

    a, b = descendants(bases[0].key), descendants(bases[1].key)
    assert not a & b and len(a) == len(b) == 1 + 1 + 2 + 2 + 2  # base, [demo-nli]; per encoder: target, eval, retrieval
    assert len(plan.stages) == len(a) + len(b) + 1
    entries = plan.by_kind("report")[0].params["entries"]
    assert sorted({(e["intermediate"], e["model"]) for e in entries}) == sorted({
        ("[] model=xit-tiny", "xit-tiny"), ("[demo-nli] model=xit-tiny", "xit-tiny"),
        (f"[] model={tiny_model_dir}", str(tiny_model_dir)),
        (f"[demo-nli] model={tiny_model_dir}", str(tiny_model_dir))})
    # One model: the plan of `model:` exactly.
    one = build_plan(load_spec(_spec(tmp_path, "name: models\nmodels: [xit-tiny]\nintermediate: [[], [demo-nli]]\n"
                                               "targets: [demo-para, demo-tatoeba]\n", "one.yaml")))
    plain = build_plan(load_spec(_spec(tmp_path, "name: models\nintermediate: [[], [demo-nli]]\n"
                                                 "targets: [demo-para, demo-tatoeba]\n", "plain.yaml")))
    assert [st.key for st in one.stages] == [st.key for st in plain.stages]


@pytest.mark.parametrize(("text", "expect"), [
    ("models: [xit-tiny, xit-tiny]", "field 'models': Value error, lists an entry twice"),
    ("models: []", "field 'models'"),
    ("model: xit-tiny\nmodels: [xit-tiny]", "field 'models': give either 'model' or 'models', not both"),
    ("models: [xit-tiny, ./nowhere]", "field 'models': "),
])
def test_models_axis_is_validated(tmp_path: Path, text: str, expect: str) -> None:
    spec = _spec(tmp_path, f"name: m\n{text}\ntargets: [demo-para]\n")
    r = xit("plan", str(spec), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert expect in r.stderr and str(spec) in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing written


def test_sources_section_per_model_against_its_own_baseline() -> None:
    vals = {"[] model=a": 50.0, "[mnli] model=a": 53.0, "[husst] model=a": 56.0,
            "[] model=b": 40.0, "[mnli] model=b": 45.0, "[husst] model=b": 41.0}
    rows = source_rows(aggregate(_scores(vals)))
    assert [(r.model, r.source, r.mean_delta) for r in rows] == [("a", "English", 3.0), ("a", "fi/hu", 6.0),
                                                                 ("b", "English", 5.0), ("b", "fi/hu", 1.0)]
    md, text = sources_section(aggregate(_scores(vals)))
    assert "| target | model | English | fi/hu |" in md
    # One row per model, its best configuration named without the model (the row says which).
    assert "| panx (f1) | a | 53.50 (+3.00); best [mnli] 53.50 | 56.50 (+6.00); best [husst] 56.50 |" in md
    assert "| panx (f1) | b | 45.50 (+5.00); best [mnli] 45.50 | 41.50 (+1.00); best [husst] 41.50 |" in md
    assert [(x["model"], x["source"], x["best"]) for x in csv.DictReader(text.splitlines())] == [
        ("a", "English", "[mnli] model=a"), ("a", "fi/hu", "[husst] model=a"), ("b", "English", "[mnli] model=b"),
        ("b", "fi/hu", "[husst] model=b")]
    # The baseline in words, with the label the main table gives it.
    prose = md[2]
    assert "difference to the baseline of the same base model, that encoder without intermediate training " \
           "(`[] model=<id>` in the main table)" in prose and "`[]`" not in prose
    one, _ = sources_section(aggregate(_scores({"[]": 50.0, "[husst]": 56.0})))
    assert "difference to the baseline, the base encoder without intermediate training (`[]` in the main " \
           "table)." in one[2]


# --------------------------------------------------------------------------- text towers as base encoders


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            (dst / f.name).write_bytes(f.read_bytes())


def _clones(state: dict) -> dict:
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def _write_open_clip(root: Path, tiny_model_dir: Path) -> Any:
    import torch
    from safetensors.torch import save_file
    from transformers import XLMRobertaModel

    torch.manual_seed(3)
    tower = XLMRobertaModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    for p in tower.parameters():  # different from the tiny model's own weights
        p.data.normal_(0, 0.05)
    state = {f"text.transformer.{k}": v for k, v in tower.state_dict().items()}
    state |= {"text.proj.0.weight": torch.randn(40, 64), "visual.conv1.weight": torch.randn(8, 3, 4, 4),
              "logit_scale": torch.tensor(4.6)}
    root.mkdir()
    save_file(_clones(state), str(root / "open_clip_model.safetensors"))
    (root / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 32, "text_cfg": {
        "hf_model_name": str(tiny_model_dir), "hf_tokenizer_name": str(tiny_model_dir), "proj": "mlp",
        "pooler_type": "mean_pooler"}, "vision_cfg": {"layers": 1, "width": 8, "patch_size": 4}}}))
    return tower


def _write_mclip(root: Path, tiny_model_dir: Path) -> Any:
    import torch
    from transformers import XLMRobertaModel

    torch.manual_seed(4)
    tower = XLMRobertaModel.from_pretrained(tiny_model_dir)  # M-CLIP keeps the pooler
    for p in tower.parameters():
        p.data.normal_(0, 0.05)
    state = {f"transformer.{k}": v for k, v in tower.state_dict().items()}
    state |= {"LinearTransformation.weight": torch.randn(32, 64), "LinearTransformation.bias": torch.randn(32)}
    root.mkdir()
    torch.save(_clones(state), root / "pytorch_model.bin")  # M-CLIP's checkpoints are .bin: read weights_only
    (root / "config.json").write_text(json.dumps({"model_type": "M-CLIP", "modelBase": str(tiny_model_dir),
                                                  "transformerDimensions": 64, "numDims": 32}))
    _copy_tokenizer(tiny_model_dir, root)
    return tower


def _mt5(vocab: int) -> Any:
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    torch.manual_seed(5)
    return MT5ForConditionalGeneration(MT5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                                 num_decoder_layers=1, num_heads=4, decoder_start_token_id=0))


def _write_mblip(root: Path, tiny_model_dir: Path) -> Any:
    import torch
    from safetensors.torch import save_file

    from xit.modeling import load_tokenizer

    lm = _mt5(len(load_tokenizer(tiny_model_dir)))
    state = {f"language_model.{k}": v for k, v in lm.state_dict().items()}
    state |= {"vision_model.embeddings.patch_embedding.weight": torch.randn(8, 3, 4, 4),
              "qformer.layernorm.weight": torch.ones(8), "query_tokens": torch.zeros(1, 2, 8)}
    root.mkdir()
    state = _clones(state)
    save_file({k: v for k, v in state.items() if k != "language_model.encoder.embed_tokens.weight"},
              str(root / "model.safetensors"))  # tied weights are stored once
    (root / "config.json").write_text(json.dumps({"model_type": "blip-2", "text_config": lm.config.to_dict(),
                                                  "vision_config": {"hidden_size": 8}, "num_query_tokens": 2}))
    _copy_tokenizer(tiny_model_dir, root)
    return lm.get_encoder()


def _write_mt5(root: Path, tiny_model_dir: Path) -> Any:
    from xit.modeling import load_tokenizer

    lm = _mt5(len(load_tokenizer(tiny_model_dir)))
    lm.save_pretrained(root, safe_serialization=True)
    _copy_tokenizer(tiny_model_dir, root)
    return lm.get_encoder()


@pytest.mark.parametrize(("layout", "write"), [("open_clip", _write_open_clip), ("mclip", _write_mclip),
                                               ("mblip", _write_mblip), ("hf", _write_mt5)])
def test_text_tower_layouts_load_as_the_base_encoder(tmp_path: Path, tiny_model_dir: Path, layout: str,
                                                     write: Any) -> None:
    """A tiny random checkpoint in each layout: the base encoder xit writes computes what the tower computes."""
    import torch

    from xit.model_layouts import detect
    from xit.modeling import load_encoder, load_tokenizer, materialise_base, new_model

    ckpt = tmp_path / layout
    tower = write(ckpt, tiny_model_dir)
    assert detect(ckpt) == layout
    out = materialise_base(str(ckpt), tmp_path / "base")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    enc, tok = load_encoder(out), load_tokenizer(out)
    batch = tok(["Ana painted the river in Porto .", "Ben sold a kettle ."], padding=True, return_tensors="pt")
    tower.eval()
    enc.eval()
    with torch.no_grad():
        want = tower(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        got = enc(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5)
    # And it is a base encoder like any other: a task head on top trains.
    model = new_model(out, [get_task("demo-para")])
    assert model.encode(batch["input_ids"], batch["attention_mask"]).shape[:2] == batch["input_ids"].shape


def test_a_tower_layout_missing_its_weights_is_one_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    from xit.modeling import materialise_base

    ckpt = tmp_path / "oc"
    _write_open_clip(ckpt, tiny_model_dir)
    state = load_file(str(ckpt / "open_clip_model.safetensors"))
    save_file({k: v for k, v in state.items() if "layer.1." not in k}, str(ckpt / "open_clip_model.safetensors"))
    with pytest.raises(XitError, match=r"open_clip text tower lacks \d+ weights of the encoder"):
        materialise_base(str(ckpt), tmp_path / "base")


def test_models_axis_over_tower_layouts_validates_and_plans(tmp_path: Path, tiny_model_dir: Path) -> None:
    _write_open_clip(tmp_path / "oc", tiny_model_dir)
    _write_mblip(tmp_path / "mb", tiny_model_dir)
    spec = _spec(tmp_path, "name: towers\nmodels: [./oc, ./mb, xit-tiny]\nintermediate: [[], [demo-nli]]\n"
                           "targets: [demo-para]\n")
    plan = build_plan(load_spec(spec))
    bases = [st for st in plan.by_kind("intermediate") if not st.params["tasks"]]
    assert [b.params["model"] for b in bases] == [str(tmp_path / "oc"), str(tmp_path / "mb"), "xit-tiny"]
    assert len({b.key for b in bases}) == 3 and len(plan.stages) == 3 * (2 + 2 + 2) + 1


def test_multimodal_pipeline_runs_six_base_models(tmp_path: Path) -> None:
    import yaml

    docs = [d for d in yaml.safe_load_all((ROOT / "pipelines" / "multimodal.yaml").read_text()) if d]
    text = next(p["value"] for p in docs[0]["spec"]["arguments"]["parameters"] if p["name"] == "spec")
    plan = build_plan(load_spec(_spec(tmp_path, text)))
    bases = [st.params["model"] for st in plan.by_kind("intermediate") if not st.params["tasks"]]
    assert bases == ["xlm-roberta-large", "google-bert/bert-base-multilingual-cased", "google/mt5-large",
                     "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus",
                     "laion/CLIP-ViT-H-14-frozen-xlm-roberta-large-laion5B-s13B-b90k", "Gregor/mblip-mt0-xl"]
    names = {t["name"] for st in plan.by_kind("intermediate") for t in st.params["tasks"]}
    assert names == {"mnli", "xnli@zh", "xnli@ar", "xnli@hi"}


def _two_model_scores() -> list[Score]:
    # Per model, seed and language: the baseline's score plus the configuration's gain (model b gains twice a's).
    base = {"a": {"en": 60.0, "fi": 50.0, "tr": 45.0}, "b": {"en": 50.0, "fi": 42.0, "tr": 30.0}}
    gain = {"[]": 0.0, "[mnli]": 3.0, "[squad]": 1.0, "[mnli, squad]": 4.0}
    return [Score(f"{c} model={m}", "xnli", lang, "accuracy",
                  v + g * (2 if m == "b" else 1) * (1.5 if lang == "tr" else 1.0) + (seed * 0.3 if g else 0.0), seed)
            for m, by in base.items() for c, g in gain.items() for seed in (1, 2, 3) for lang, v in by.items()]


def test_report_compares_each_model_with_its_own_baseline(tmp_path: Path) -> None:
    from xit.report import baseline_of, build_report, delta_grid, plot_typology

    assert baseline_of("[mnli] model=google/mt5-large") == "[] model=google/mt5-large"
    assert baseline_of("[mnli]") == "[]" and baseline_of("[] model=a") == "[] model=a"
    tables = build_report(_two_model_scores(), tmp_path, complementarity=[["mnli", "squad"]], n_resamples=200)
    assert tables.configs == ["[] model=a", "[mnli] model=a", "[squad] model=a", "[mnli, squad] model=a",
                              "[] model=b", "[mnli] model=b", "[squad] model=b", "[mnli, squad] model=b"]
    results = {x["intermediate"]: x for x in csv.DictReader((tmp_path / "results.csv").open())}
    for config, x in results.items():
        base = results[baseline_of(config)]
        assert float(x["delta"]) == pytest.approx(float(x["score"]) - float(base["score"]), abs=1e-3)
        if config != baseline_of(config):  # tested against its own baseline, over the three seeds
            assert x["test"] == "paired t-test" and float(x["delta_ci_low"]) > 0 and float(x["p_value"]) < 0.05
    # a: +3 on en and fi, +4.5 on tr (mean 3.5), seeds add 0.6; b twice a's gains.
    assert float(results["[mnli] model=a"]["delta"]) == pytest.approx(3.5 + 0.6, abs=1e-3)
    assert float(results["[mnli] model=b"]["delta"]) == pytest.approx(7.0 + 0.6, abs=1e-3)
    md = (tmp_path / "results.md").read_text()
    assert "| [mnli] model=b | 48.3 (+7.6*) | 48.3 (+7.6) |" in md and "| [] model=b | 40.7 | 40.7 |" in md
    configs, deltas, grey = delta_grid(tables)
    assert configs == [c for c in tables.configs if not c.startswith("[] ")]
    assert deltas[:, 0] == pytest.approx([float(results[c]["delta"]) for c in configs], abs=1e-3)
    assert not grey.any()
    # Typology: per model, groups against its own baseline (tr agglutinative, fi fusional).
    typo = {(x["model"], x["attribute"], x["group"], x["intermediate"]): x
            for x in csv.DictReader((tmp_path / "typology.csv").open())}
    agg_b = typo[("b", "morphology", "agglutinative", "[mnli] model=b")]
    assert (float(agg_b["baseline_score"]), float(agg_b["delta"])) == (30.0, pytest.approx(9.6))
    assert float(typo[("a", "morphology", "fusional", "[squad] model=a")]["delta"]) == pytest.approx(1.6)
    assert "### xnli (accuracy) by morphology, b" in md
    assert "| agglutinative | tr | 30.0 | +9.6 | +3.6 | +12.6 |" in md
    assert "| morphology | languages | baseline score | Δ [mnli] | Δ [squad] | Δ [mnli, squad] |" in md
    # typology.png: one panel per target × attribute holds both models, a bar per (model, configuration).
    drawn = {(t, a): (groups, deltas) for t, a, groups, deltas in plot_typology(tables, io.BytesIO())}
    groups, deltas = drawn["xnli", "morphology"]
    assert groups == ["unknown", "fusional", "agglutinative"]
    assert list(deltas) == [(m, c) for m in ("a", "b") for c in ("[mnli]", "[squad]", "[mnli, squad]")]
    expect = {"[mnli]": (3.0, 4.5), "[squad]": (1.0, 1.5), "[mnli, squad]": (4.0, 6.0)}  # (en/fi, tr) gains of a
    for (m, c), got in deltas.items():
        even, tr = expect[c]
        k = 2 if m == "b" else 1
        assert got == pytest.approx([even * k + 0.6, even * k + 0.6, tr * k + 0.6])
    # Complementarity: one table per model, each of its own configurations.
    comp = [(x["mixture"], x["comparison"], x["intermediate"])
            for x in csv.DictReader((tmp_path / "complementarity.csv").open())]
    assert ("[mnli, squad] model=b", "best single", "[mnli] model=b") in comp
    assert {m for m, _, _ in comp} == {"[mnli, squad] model=a", "[mnli, squad] model=b"}
    by_model = {(x["model"], x["comparison"]): float(x["mixture_minus"] or "nan")
                for x in csv.DictReader((tmp_path / "complementarity.csv").open())}
    assert {m for m, _ in by_model} == {"a", "b"}
    # The mixture against its best single: a +1 (4 vs 3, tr 6 vs 4.5), b twice that, never the other model's.
    assert by_model[("a", "best single")] == pytest.approx(1.5 / 3 + 2 / 3, abs=1e-3)
    assert by_model[("b", "best single")] == pytest.approx(2 * (1.5 / 3 + 2 / 3), abs=1e-3)
    from xit.report import legend

    assert "minus the baseline [] model=<id>'s (the same base encoder, no intermediate training)" in legend(tables)


@pytest.mark.slow
def test_tiny_two_model_sweep_has_a_delta_for_every_configuration(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = _spec(tmp_path, f"name: two-models\nmodels: [xit-tiny, {tiny_model_dir}]\n"
                           "intermediate: [[], [demo-nli]]\ntargets: [demo-para]\n"
                           "hparams: {intermediate: {epochs: 1, max_train_examples: 32, max_dev_examples: 16},"
                           " target: {epochs: 1, max_train_examples: 32, max_dev_examples: 16,"
                           " max_eval_examples: 24}}\n")
    out = tmp_path / "out"
    r = xit("run", str(spec), "--store", str(tmp_path / "store"), "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {x["intermediate"]: x for x in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {f"{c} model={m}" for c in ("[]", "[demo-nli]") for m in ("xit-tiny", tiny_model_dir)}
    for m in ("xit-tiny", tiny_model_dir):
        base, tuned = rows[f"[] model={m}"], rows[f"[demo-nli] model={m}"]
        assert float(base["delta"]) == 0.0 and base["test"] == ""
        assert tuned["delta"] != "" and tuned["test"] == "paired bootstrap"
        assert float(tuned["delta"]) == pytest.approx(float(tuned["score"]) - float(base["score"]), abs=2e-4)
    md = (out / "results.md").read_text()
    assert "difference to the baseline `[] model=<id> (of the same base model)`" in md
    assert f"| [demo-nli] model={tiny_model_dir} | " in md


def test_typology_pipeline_groups_every_targets_languages_per_model(tmp_path: Path) -> None:
    import yaml

    from xit.typology import ATTRIBUTES, group_languages

    docs = [d for d in yaml.safe_load_all((ROOT / "pipelines" / "typology.yaml").read_text()) if d]
    text = next(p["value"] for p in docs[0]["spec"]["arguments"]["parameters"] if p["name"] == "spec")
    plan = build_plan(load_spec(_spec(tmp_path, text)))
    models = ["xlm-roberta-large", "google/mt5-large"]
    assert [st.params["model"] for st in plan.by_kind("intermediate") if not st.params["tasks"]] == models
    assert {t["name"] for st in plan.by_kind("intermediate") for t in st.params["tasks"]} == {"mnli", "squad"}
    # The report of this plan, on made-up scores for every evaluation it lists: intermediate training adds
    # 2 points for XLM-R and 5 for mT5 on every language, so each group's delta is that, against its own model.
    report = plan.by_kind("report")[0].params
    stages = {st.key: st for st in plan.stages}
    scores = [Score(e["intermediate"], e["target"], lang, e["metric"],
                    50.0 + (0 if e["intermediate"].startswith("[] ") else 2 if "xlm" in e["intermediate"] else 5),
                    e["seed"]) for e in report["entries"] for lang in stages[e["key"]].params["languages"]]
    tables = aggregate(scores, model=report["model"])
    rows = tables.typology_rows
    targets = ["xnli", "xcopa", "udpos-r", "panx-r", "xquad", "mlqa", "tydiqa", "tatoeba-r", "lareqa"]
    assert list(dict.fromkeys(r.target for r in rows)) == targets
    for target in targets:
        langs = tables.languages[target]
        for model in models:
            mine = [r for r in rows if (r.target, r.model) == (target, model)]
            assert {r.intermediate for r in mine} == {f"[mnli] model={model}", f"[squad] model={model}"}
            for attribute in ATTRIBUTES:
                got = {r.group: list(r.languages) for r in mine if r.attribute == attribute}
                assert got == group_languages(langs, attribute)
            assert {r.delta for r in mine} == {2.0 if model == models[0] else 5.0}
    morph = {r.group for r in rows if r.attribute == "morphology"}
    assert {"agglutinative", "fusional", "isolating"} <= morph
