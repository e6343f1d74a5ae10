"""Tests for xit.report: aggregation order, deltas, the written files and atomic writes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from rich.console import Console

from xit.errors import XitError
from xit.report import Score, build_report, read_results_csv, render_rich

# (intermediate, target, metric) -> {seed: {language: score}}
RAW = {
    ("[]", "xnli", "accuracy"): {1: {"de": 70, "sw": 60}, 2: {"de": 72, "sw": 62}},
    ("[mnli]", "xnli", "accuracy"): {1: {"de": 75, "sw": 64}, 2: {"de": 77, "sw": 67}},
    ("[mnli, squad]", "xnli", "accuracy"): {1: {"de": 74, "sw": 61}, 2: {"de": 73, "sw": 60}},
    ("[]", "tydiqa", "f1"): {1: {"de": 50, "sw": 40}, 2: {"de": 52, "sw": 46}},
    ("[mnli]", "tydiqa", "f1"): {1: {"de": 49, "sw": 41}, 2: {"de": 47, "sw": 39}},
    ("[mnli, squad]", "tydiqa", "f1"): {1: {"de": 60, "sw": 50}, 2: {"de": 58, "sw": 47}},
}


def make_scores(raw: dict, first: str | None = None) -> list[Score]:
    """Flatten RAW into Scores; `first` puts that configuration's scores last to test ordering."""
    scores = [Score(i, t, lang, m, float(v), seed)
              for (i, t, m), by_seed in raw.items() for seed, by_lang in by_seed.items()
              for lang, v in by_lang.items()]
    if first is not None:
        scores.sort(key=lambda s: s.intermediate == first)
    return scores


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def report(tmp_path: Path):
    out = tmp_path / "nested" / "report"  # created by build_report
    # Baseline scores come last in the input; it must still be the first row.
    return out, build_report(make_scores(RAW, first="[]"), out, title="Test sweep")


def test_results_csv_exact_numbers(report) -> None:
    out, _ = report
    # Per seed mean over languages, then mean over seeds:
    #   xnli   []             s1 (70+60)/2=65    s2 (72+62)/2=67    -> 66.0
    #   xnli   [mnli]         s1 (75+64)/2=69.5  s2 (77+67)/2=72    -> 70.75  delta +4.75
    #   xnli   [mnli, squad]  s1 (74+61)/2=67.5  s2 (73+60)/2=66.5  -> 67.0   delta +1.0
    #   tydiqa []             s1 (50+40)/2=45    s2 (52+46)/2=49    -> 47.0
    #   tydiqa [mnli]         s1 (49+41)/2=45    s2 (47+39)/2=43    -> 44.0   delta -3.0
    #   tydiqa [mnli, squad]  s1 (60+50)/2=55    s2 (58+47)/2=52.5  -> 53.75  delta +6.75
    # Baseline first although it came last; target order is first appearance (xnli, tydiqa).
    assert [r[:5] for r in read_csv(out / "results.csv")] == [
        ["intermediate", "target", "metric", "score", "delta"],
        ["[]", "xnli", "accuracy", "66.0", "0.0"],
        ["[]", "tydiqa", "f1", "47.0", "0.0"],
        ["[mnli]", "xnli", "accuracy", "70.75", "4.75"],
        ["[mnli]", "tydiqa", "f1", "44.0", "-3.0"],
        ["[mnli, squad]", "xnli", "accuracy", "67.0", "1.0"],
        ["[mnli, squad]", "tydiqa", "f1", "53.75", "6.75"],
    ]
    rows = read_results_csv(out / "results.csv")
    assert {k: rows[0][k] for k in ("intermediate", "target", "metric", "score", "delta")} == {
        "intermediate": "[]", "target": "xnli", "metric": "accuracy", "score": 66.0, "delta": 0.0}
    assert [r["delta"] for r in rows if r["intermediate"] == "[]"] == [0.0, 0.0]


def test_per_language_csv_exact_numbers(report) -> None:
    out, _ = report
    # Mean over seeds per language, e.g. xnli [] de (70+72)/2=71, sw (60+62)/2=61.
    assert read_csv(out / "per_language.csv") == [
        ["intermediate", "target", "language", "metric", "score"],
        ["[]", "xnli", "de", "accuracy", "71.0"],
        ["[]", "xnli", "sw", "accuracy", "61.0"],
        ["[]", "tydiqa", "de", "f1", "51.0"],
        ["[]", "tydiqa", "sw", "f1", "43.0"],
        ["[mnli]", "xnli", "de", "accuracy", "76.0"],
        ["[mnli]", "xnli", "sw", "accuracy", "65.5"],
        ["[mnli]", "tydiqa", "de", "f1", "48.0"],
        ["[mnli]", "tydiqa", "sw", "f1", "40.0"],
        ["[mnli, squad]", "xnli", "de", "accuracy", "73.5"],
        ["[mnli, squad]", "xnli", "sw", "accuracy", "60.5"],
        ["[mnli, squad]", "tydiqa", "de", "f1", "59.0"],
        ["[mnli, squad]", "tydiqa", "sw", "f1", "48.5"],
    ]


def test_tables_std_and_seeds(report) -> None:
    _, tables = report
    row = tables.row("[]", "xnli")
    assert row is not None
    # Seed means 65 and 67: sample std sqrt(2) over 2 seeds.
    assert (row.score, row.std, row.n_seeds, row.delta) == (66.0, pytest.approx(math.sqrt(2)), 2, 0.0)
    assert tables.configs == ["[]", "[mnli]", "[mnli, squad]"]
    assert tables.targets == ["xnli", "tydiqa"]


def test_markdown_main_table_and_avg(report) -> None:
    out, tables = report
    md = (out / "results.md").read_text()
    assert md.startswith("# Test sweep\n")
    assert "| intermediate | xnli (accuracy) | tydiqa (f1) | avg |" in md
    # avg = mean over targets; its delta = mean of deltas:
    #   []            (66+47)/2    = 56.5
    #   [mnli]        (70.75+44)/2 = 57.375 -> 57.4,  (4.75-3)/2 = 0.875 -> +0.9
    #   [mnli, squad] (67+53.75)/2 = 60.375 -> 60.4,  (1+6.75)/2 = 3.875 -> +3.9
    assert "| [] | 66.0 | 47.0 | 56.5 |" in md
    # [mnli] on xnli: seed deltas 4.5 and 5.0, paired t interval 4.75 ± 12.706·0.25 excludes zero: marked.
    assert "| [mnli] | 70.8 (+4.8*) | 44.0 (-3.0) | 57.4 (+0.9) |" in md
    assert "| [mnli, squad] | 67.0 (+1.0) | 53.8 (+6.8) | 60.4 (+3.9) |" in md
    assert tables.average("[mnli]") == (57.375, 0.875)
    # Per-language tables, one per target.
    assert "## xnli (accuracy) per language" in md
    assert "| intermediate | de | sw |" in md
    assert "| [mnli] | 76.0 | 65.5 |" in md


def test_deltas_png_is_valid(report) -> None:
    out, _ = report
    data = (out / "deltas.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000


def test_no_temp_files_left(report) -> None:
    out, _ = report
    names = sorted(p.name for p in out.iterdir())
    assert names == ["deltas.png", "per_language.csv", "results.csv", "results.md", "typology.csv", "typology.png"]


def test_missing_baseline_gives_empty_delta(tmp_path: Path) -> None:
    raw = {k: v for k, v in RAW.items() if k[0] != "[]"}
    tables = build_report(make_scores(raw), tmp_path)
    rows = read_csv(tmp_path / "results.csv")
    assert rows[1][:5] == ["[mnli]", "xnli", "accuracy", "70.75", ""]
    assert all(r[4] == "" and r[9:] == ["", "", "", ""] for r in rows[1:])
    assert all(r["delta"] is None for r in read_results_csv(tmp_path / "results.csv"))
    assert all(math.isnan(r.delta) for r in tables.rows)
    assert "| [mnli] | 70.8 (—) | 44.0 (—) | 57.4 (—) |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "deltas.png").read_bytes()[:4] == b"\x89PNG"


def test_baseline_missing_for_one_target_only(tmp_path: Path) -> None:
    raw = {k: v for k, v in RAW.items() if k[:2] != ("[]", "tydiqa")}
    build_report(make_scores(raw), tmp_path)
    rows = read_results_csv(tmp_path / "results.csv")
    deltas = {(r["intermediate"], r["target"]): r["delta"] for r in rows}
    assert deltas[("[mnli]", "xnli")] == 4.75
    assert deltas[("[mnli]", "tydiqa")] is None


def test_languages_averaged_before_seeds(tmp_path: Path) -> None:
    # Seed 1 has three languages, seed 2 only one: seeds 1 -> (70+61+50)/3 = 60.3333..., 2 -> 71.
    # Mean over seeds = 65.6667 (pooling all four scores would give 63.0).
    raw = {("[]", "xnli", "accuracy"): {1: {"de": 70, "sw": 61, "fr": 50}, 2: {"de": 71}}}
    tables = build_report(make_scores(raw), tmp_path)
    assert read_csv(tmp_path / "results.csv")[1][:5] == ["[]", "xnli", "accuracy", "65.6667", "0.0"]
    assert read_csv(tmp_path / "per_language.csv")[1:] == [
        ["[]", "xnli", "de", "accuracy", "70.5"],
        ["[]", "xnli", "sw", "accuracy", "61.0"],
        ["[]", "xnli", "fr", "accuracy", "50.0"],
    ]
    # Only the baseline: the heatmap shows its row of zeros.
    assert (tmp_path / "deltas.png").read_bytes()[:4] == b"\x89PNG"
    assert tables.language_row("[]", "xnli", "fr").n_seeds == 1


def test_render_rich_colours_deltas(report) -> None:
    _, tables = report
    table = render_rich(tables)
    assert [c.header for c in table.columns] == ["intermediate", "xnli\n(accuracy)", "tydiqa\n(f1)", "avg"]
    assert table.row_count == 3
    cells = {c.header: c._cells for c in table.columns}
    up, down = cells["xnli\n(accuracy)"][1], cells["tydiqa\n(f1)"][1]
    assert up.plain == "70.8 (+4.8*)" and any(s.style == "bold green" for s in up.spans)  # significant
    assert down.plain == "44.0 (-3.0)" and any(s.style == "red" for s in down.spans)
    console = Console(record=True, width=120)
    console.print(table)
    assert "57.4 (+0.9)" in console.export_text()


def test_inconsistent_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(XitError):
        build_report([], tmp_path)
    dup = Score("[]", "xnli", "de", "accuracy", 1.0, 1)
    with pytest.raises(XitError):
        build_report([dup, dup], tmp_path)
    with pytest.raises(XitError):
        build_report([dup, Score("[]", "xnli", "sw", "f1", 1.0, 1)], tmp_path)


# --------------------------------------------------------------------------- benchmark scores (XTREME, XTREME-R)


def benchmark_scores_for(config: str, per_task: dict[str, float | tuple[float, float]],
                         drop: tuple[str, str] | None = None) -> list[Score]:
    """Scores of `config` on every language of each task (from the registry): a number, or a pair for the
    first and second half of the task's languages. `drop` leaves out one (task, language)."""
    from xit.tasks.registry import get_task

    out = []
    for task, value in per_task.items():
        t = get_task(task)
        langs = list(t.languages)
        for i, lang in enumerate(langs):
            if (task, lang) == drop:
                continue
            v = value if not isinstance(value, tuple) else value[0] if i < len(langs) // 2 else value[1]
            out.append(Score(config, task, lang, t.metric, float(v), 1))
    return out


XTREME_BASE = {"xnli": 70, "pawsx": 80, "udpos": 60, "panx": 50, "xquad": 65, "mlqa": 55, "tydiqa": 45,
               "bucc": 40, "tatoeba": (20, 40)}


def test_xtreme_score_is_the_mean_over_the_nine_tasks(tmp_path: Path) -> None:
    from xit.tasks.registry import get_task

    assert len(get_task("tatoeba").languages) % 2 == 0  # half at 20, half at 40: its mean is 30
    better = {t: (v + 2 if not isinstance(v, tuple) else (v[0] + 11, v[1] + 11)) for t, v in XTREME_BASE.items()}
    scores = (benchmark_scores_for("[]", XTREME_BASE) + benchmark_scores_for("[mnli]", better)
              + benchmark_scores_for("[squad]", better, drop=("panx", "yo")))
    tables = build_report(scores, tmp_path)
    # []: (70 + 80 + 60 + 50 + 65 + 55 + 45 + 40 + 30) / 9 = 495 / 9 = 55.0
    # [mnli]: eight tasks +2, tatoeba +11: (495 + 16 + 11) / 9 = 58.0, delta +3.0
    # [squad]: PAN-X lacks Yoruba: no XTREME score.
    assert [(b.intermediate, b.benchmark, b.score, b.delta) for b in tables.benchmark_rows] == [
        ("[]", "XTREME", pytest.approx(55.0), pytest.approx(0.0)),
        ("[mnli]", "XTREME", pytest.approx(58.0), pytest.approx(3.0)),
    ]
    base = tables.benchmark_row("[]", "XTREME")
    # evaluate.py's group scores: (70+80)/2, (60+50)/2, (65+55+45)/3, (40+30)/2
    assert base.categories == {"classification": 75.0, "structured prediction": 55.0, "question answering": 55.0,
                               "retrieval": 35.0}
    assert tables.benchmarks == ["XTREME"] and tables.benchmark_row("[squad]", "XTREME") is None
    rows = read_csv(tmp_path / "results.csv")
    assert [r[:5] for r in rows[-2:]] == [["[]", "XTREME", "benchmark", "55.0", "0.0"],
                                          ["[mnli]", "XTREME", "benchmark", "58.0", "3.0"]]
    md = (tmp_path / "results.md").read_text()
    assert "| avg | XTREME score |" in md
    assert md.count("| [mnli] |") >= 1 and "58.0 (+3.0) |" in md
    assert "## XTREME score (mean over its tasks)" in md
    assert "| [] | 55.0 | 75.0 | 55.0 | 55.0 | 35.0 |" in md
    table = render_rich(tables)
    cells = {c.header: c._cells for c in table.columns}
    assert cells["XTREME score"][0].plain == "55.0" and cells["XTREME score"][1].plain == "58.0 (+3.0)"
    assert cells["XTREME score"][2] == "—"


def test_xtreme_r_score_is_the_mean_over_its_ten_tasks(tmp_path: Path) -> None:
    per_task = {"xnli": 70, "xcopa": 60, "udpos-r": 70, "panx-r": 60, "xquad": 66, "mlqa": 60, "tydiqa": 54,
                "tatoeba-r": 60, "mewslix": 30, "lareqa": 30}
    # evaluate.py's all_task: 560 / 10 = 56.0 (the mean of the four category means would be 57.5).
    # Categories: classification (70+60)/2 = 65, structured prediction (70+60)/2 = 65,
    # question answering (66+60+54)/3 = 60, retrieval (60+30+30)/3 = 40.
    tables = build_report(benchmark_scores_for("[squad]", per_task), tmp_path, baseline="[]")
    (b,) = tables.benchmark_rows
    assert (b.intermediate, b.benchmark, b.score) == ("[squad]", "XTREME-R", pytest.approx(56.0))
    assert b.categories == {"classification": 65.0, "structured prediction": 65.0, "question answering": 60.0,
                            "retrieval": 40.0}
    assert math.isnan(b.delta)  # no baseline run
    assert read_csv(tmp_path / "results.csv")[-1][:5] == ["[squad]", "XTREME-R", "benchmark", "56.0", ""]
    md = (tmp_path / "results.md").read_text()
    assert "## XTREME-R score (mean over its tasks)" in md
    assert "| [squad] | 56.0 | 65.0 | 65.0 | 60.0 | 40.0 |" in md
    # One task missing: no XTREME-R score at all, and nothing extra in the files.
    without_lareqa = {t: v for t, v in per_task.items() if t != "lareqa"}
    tables = build_report(benchmark_scores_for("[squad]", without_lareqa), tmp_path)
    assert tables.benchmark_rows == [] and read_csv(tmp_path / "results.csv")[-1][1] == "mewslix"
    assert "XTREME-R" not in (tmp_path / "results.md").read_text()


def test_benchmark_scores_take_explicit_language_sets(tmp_path: Path) -> None:
    from xit.report import aggregate

    # With task_languages given, a benchmark is complete when every task has those languages.
    langs = {t: {"de"} for t in XTREME_BASE}
    scores = [Score("[]", t, "de", "accuracy", float(i), 1) for i, t in enumerate(XTREME_BASE)]
    tables = aggregate(scores, task_languages=langs)
    assert [(b.benchmark, b.score) for b in tables.benchmark_rows] == [("XTREME", pytest.approx(36 / 9))]
    assert aggregate(scores[:-1], task_languages=langs).benchmark_rows == []
