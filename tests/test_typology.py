"""Research question 5's ground: per-language metadata with a source for every value, and the report section
that groups every target's languages by it, with the delta of intermediate training per group."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from xit.report import Score, build_report, plot_typology
from xit.tasks.registry import all_tasks
from xit.typology import (
    ATTRIBUTES,
    LANGUAGES,
    MORPHOLOGICAL_TYPES,
    TYPOLOGY_HEADER,
    WALS_VALUES,
    language,
    morphological_type,
)


def test_every_language_of_every_task_has_metadata_with_its_source() -> None:
    codes = {lang for t in all_tasks() if t.family != "demo" for lang in t.languages}
    missing = sorted(c for c in codes if language(c) is None)
    assert missing == []
    for code in codes:
        meta = language(code)
        assert re.fullmatch(r"[A-Z][a-z]{3}", meta.script), code  # ISO 15924
        assert meta.family and meta.genus and re.fullmatch(r"[a-z]{3}", meta.wals)
        assert meta.morphology in MORPHOLOGICAL_TYPES
        features = [v.split("-")[0] for v in meta.wals_values]
        assert all(v in WALS_VALUES for v in meta.wals_values) and len(features) == len(set(features))
        for attribute in ATTRIBUTES:
            assert meta.source(attribute), (code, attribute)
        if meta.morphology != "unknown":  # a type names the WALS values it was read from
            assert all(v.split()[0] in meta.wals_values for v in re.findall(r"\d+A-\d \w+", meta.morphology_source))
            assert meta.morphology_source.startswith("WALS ")
        assert meta.source("affixation").startswith("WALS 26A-") == (meta.affixation != "unknown")


def test_morphological_type_rule() -> None:
    assert LANGUAGES["vi"].morphology == "isolating" and "20A-2" in LANGUAGES["vi"].morphology_source
    assert LANGUAGES["zh"].morphology == "isolating" and LANGUAGES["zh"].morphology_source == \
        "WALS 22A-1 0-1 category per word"
    assert LANGUAGES["th"].morphology == "isolating"  # little affixation (26A-1), not exclusively concatenative
    assert LANGUAGES["he"].morphology == "fusional"
    assert "20A-6 Ablaut/concatenative" in LANGUAGES["he"].morphology_source
    assert LANGUAGES["ru"].morphology == "fusional"  # 21A-2 case + number
    assert (LANGUAGES["tr"].morphology, LANGUAGES["ko"].morphology, LANGUAGES["hu"].morphology) == \
        ("agglutinative",) * 3
    assert LANGUAGES["en"].morphology == "unknown"  # no case (21A-5), concatenative: WALS does not decide it
    assert LANGUAGES["ar"].morphology == "unknown" and LANGUAGES["ar"].affixation == "Strongly suffixing"
    assert morphological_type(("20A-1", "22A-6")) == ("polysynthetic", "WALS 22A-6 10-11 categories per word")
    assert morphological_type(()) == ("unknown", "no WALS 20A/21A/22A/26A datapoint that decides it")
    assert (LANGUAGES["fi"].family, LANGUAGES["hu"].family, LANGUAGES["ja"].script) == ("Uralic", "Uralic", "Jpan")
    assert language("zh-CN") is LANGUAGES["zh"] and language("xx") is None


# Per-language scores (one seed) of the baseline and one configuration on one target.
BASE = {"en": 80.0, "de": 70.0, "fi": 60.0, "hu": 58.0, "tr": 50.0, "zh": 55.0, "vi": 62.0}
MNLI = {"en": 82.0, "de": 73.0, "fi": 66.0, "hu": 62.0, "tr": 59.0, "zh": 56.0, "vi": 62.0}


def _scores() -> list[Score]:
    return [Score(c, "xnli", lang, "accuracy", v, 1) for c, by in (("[]", BASE), ("[mnli]", MNLI))
            for lang, v in by.items()]


def test_report_groups_every_targets_languages_with_the_delta_per_group(tmp_path: Path) -> None:
    tables = build_report(_scores(), tmp_path, model="xlm-roberta-large")
    with open(tmp_path / "typology.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == TYPOLOGY_HEADER
    assert {r["attribute"] for r in rows} == set(ATTRIBUTES) and {r["model"] for r in rows} == {"xlm-roberta-large"}
    morph = {r["group"]: (r["languages"], float(r["baseline_score"]), float(r["delta"]))
             for r in rows if r["attribute"] == "morphology"}
    # en unknown; de, fi fusional; hu, tr agglutinative; zh, vi isolating.
    assert morph == {"unknown": ("en", 80.0, 2.0), "fusional": ("de fi", 65.0, 4.5),
                     "agglutinative": ("hu tr", 54.0, 6.5), "isolating": ("zh vi", 58.5, 0.5)}
    family = {r["group"]: (r["languages"], float(r["delta"])) for r in rows if r["attribute"] == "family"}
    assert family == {"Indo-European": ("en de", 2.5), "Uralic": ("fi hu", 5.0), "Altaic": ("tr", 9.0),
                      "Sino-Tibetan": ("zh", 1.0), "Austro-Asiatic": ("vi", 0.0)}
    script = {r["group"]: r["languages"] for r in rows if r["attribute"] == "script"}
    assert script == {"Latn": "en de fi hu tr vi", "Hans": "zh"}

    md = (tmp_path / "results.md").read_text()
    assert "## Languages by typology (xlm-roberta-large)" in md
    assert "### xnli (accuracy) by morphology" in md
    assert "| agglutinative | hu tr | 54.0 | +6.5 |" in md
    assert "| Uralic | fi hu | 59.0 | +5.0 |" in md

    assert (tmp_path / "typology.png").read_bytes()[:4] == b"\x89PNG"
    drawn = {(t, a): (groups, deltas) for t, a, groups, deltas in plot_typology(tables, io.BytesIO())}
    assert set(drawn) == {("xnli", a) for a in ATTRIBUTES}
    groups, deltas = drawn["xnli", "morphology"]
    assert groups == ["unknown", "fusional", "agglutinative", "isolating"]
    assert deltas == {("xlm-roberta-large", "[mnli]"): pytest.approx([2.0, 4.5, 6.5, 0.5])}


def test_no_section_without_metadata_or_baseline(tmp_path: Path) -> None:
    synthetic = [Score(c, "demo-para", lang, "accuracy", 50.0, 1) for c in ("[]", "[demo-nli]")
                 for lang in ("en", "pig", "rev")]
    assert build_report(synthetic, tmp_path / "a").typology_rows == []  # only English is a real language
    mixed = synthetic + [Score(c, "demo-para", "fi", "accuracy", 40.0, 1) for c in ("[]", "[demo-nli]")]
    tables = build_report(mixed, tmp_path / "c")
    assert [(r.group, r.languages) for r in tables.typology_rows if r.attribute == "family"] == [
        ("Indo-European", ("en",)), ("no metadata", ("pig", "rev")), ("Uralic", ("fi",))]
    no_base = [s for s in _scores() if s.intermediate != "[]"]
    assert build_report(no_base, tmp_path / "b").typology_rows == []
    assert not (tmp_path / "b" / "typology.csv").exists()


DESCRIPTOR = """\
name: para-typo
format: classification
languages: [en, fi, tr, zh]
labels: [different, paraphrase]
files: "data/{lang}.{split}.tsv"
columns: {text_a: s1, text_b: s2, label: gold}
defaults: {lr: 1.0e-3, epochs: 1, batch_size: 16, max_length: 64}
"""


@pytest.mark.slow
@pytest.mark.usefixtures("restore_registry")
def test_tiny_sweep_report_has_the_typology_section(tmp_path: Path) -> None:
    import subprocess
    import sys

    from xit.tasks.registry import get_task

    # demo-para's real rows stand in for three languages xit has metadata for (only the codes matter here).
    para = get_task("demo-para")
    (tmp_path / "tasks" / "data").mkdir(parents=True)
    (tmp_path / "tasks" / "para-typo.yaml").write_text(DESCRIPTOR)
    for lang, src, split, n in [("en", "en", "train", 96), ("en", "en", "dev", 24), ("en", "en", "test", 30),
                                ("fi", "agg", "test", 30), ("tr", "vso", "test", 30), ("zh", "fus", "test", 30)]:
        rows = para.load(src, split)[:n]
        lines = ["s1\ts2\tgold"] + [f"{r['text_a']}\t{r['text_b']}\t{para.labels[r['label']]}" for r in rows]
        (tmp_path / "tasks" / "data" / f"{lang}.{split}.tsv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: typo\ntask_files: [tasks]\nintermediate: [[], [demo-nli]]\ntargets: [para-typo]\n"
                    "hparams:\n  intermediate: {lr: 1.0e-3, epochs: 1, max_train_examples: 32, max_dev_examples: 8}\n")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(spec), "--store", str(tmp_path / "store"),
                        "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(tmp_path / "out" / "typology.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(tmp_path / "out" / "per_language.csv", newline="") as f:
        per_lang = {(x["intermediate"], x["language"]): float(x["score"]) for x in csv.DictReader(f)}
    morph = {x["group"]: x for x in rows if x["attribute"] == "morphology"}
    # en: unknown, fi: fusional, tr: agglutinative, zh: isolating (WALS-derived), each its own group here.
    assert {g: x["languages"] for g, x in morph.items()} == {"unknown": "en", "fusional": "fi",
                                                             "agglutinative": "tr", "isolating": "zh"}
    for x in rows:
        assert x["model"] == "xit-tiny" and x["intermediate"] == "[demo-nli]"
        langs = x["languages"].split()
        mean = sum(per_lang["[demo-nli]", lang] for lang in langs) / len(langs)
        base = sum(per_lang["[]", lang] for lang in langs) / len(langs)
        assert float(x["delta"]) == pytest.approx(mean - base, abs=2e-4)
    families = {x["group"] for x in rows if x["attribute"] == "family"}
    assert families == {"Indo-European", "Uralic", "Altaic", "Sino-Tibetan"}
    assert "## Languages by typology (xit-tiny)" in (tmp_path / "out" / "results.md").read_text()
    assert (tmp_path / "out" / "typology.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_languages_lists_every_language_with_sources(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "xit.cli", "languages", "--json"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {x["language"]: x for x in json.loads(r.stdout)}
    assert set(rows) == set(LANGUAGES)
    assert rows["tr"]["morphology"] == "agglutinative"
    assert rows["tr"]["sources"]["morphology"] == "WALS 21A-1 Monoexponential case"
    assert rows["fi"]["sources"]["family"] == "WALS v2020.4 languages.csv (fin)"
    assert rows["ja"]["script"] == "Jpan" and rows["ja"]["sources"]["script"] == "Unicode CLDR likelySubtags"
