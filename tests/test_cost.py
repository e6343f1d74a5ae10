"""`xit plan --cost`: GPU-hour estimates from published data sizes, model shapes and PaLM's FLOP count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xit.cli import app
from xit.cost import TASK_SIZES, Device, Shape, estimate, model_shape, unshared_hours
from xit.plan import build_plan
from xit.spec import parse_spec

LARGE = 24 * (4 * 1024 * 1024 + 2 * 1024 * 4096)  # XLM-R Large's layers: attention 4d², FFN 2·d·4d


def _plan(**over):
    spec = {"name": "c", "model": "xlm-roberta-large", "intermediate": [[], ["mnli"]], "targets": ["xnli", "pawsx"],
            "seeds": [1], "hparams": {"intermediate": {"max_train_examples": 1000, "epochs": 2, "max_length": 128}}}
    spec.update(over)
    if "models" in spec:
        del spec["model"]
    return build_plan(parse_spec(spec, Path("c.yaml")))


def test_shapes_of_named_and_local_models(tmp_path: Path) -> None:
    assert model_shape("xlm-roberta-large").params == LARGE == 301_989_888
    assert model_shape("xlm-roberta-base").params == 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    # mT5's gated FFN has three matrices, and attention is heads × d_kv wide.
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "mt5", "d_model": 512, "num_layers": 8, "d_ff": 1024, "num_heads": 6, "d_kv": 64,
         "feed_forward_proj": "gated-gelu"}))
    assert model_shape(str(tmp_path)) == Shape(8, 512, 1024, 384, True)
    assert model_shape(str(tmp_path)).params == 8 * (4 * 512 * 384 + 3 * 512 * 1024)
    assert model_shape("someone/unknown-model") is None


def test_stage_hours_by_hand() -> None:
    plan = _plan()
    device = Device(312.0, 0.35)
    est = estimate(plan, device)
    [mnli] = [s for s in plan.by_kind("intermediate") if s.params["tasks"]]
    flops = 1000 * 2 * 128 * (6 * LARGE + 12 * 24 * 1024 * 128)
    assert est.hours[mnli.key] == pytest.approx(flops / (312e12 * 0.35) / 3600)
    # An XNLI evaluation: every language's 5,010 test pairs, forward only (2N + 4·L·d·S per token).
    [ev] = [s for s in plan.by_kind("evaluate") if s.params["task"] == "xnli"][:1]
    seq = ev.params["hp"]["max_length"]
    flops = len(ev.params["languages"]) * TASK_SIZES["xnli"][1] * seq * (2 * LARGE + 4 * 24 * 1024 * seq)
    assert est.hours[ev.key] == pytest.approx(flops / (312e12 * 0.35) / 3600)
    assert not est.missing


def test_sharing_saving_counts_each_chain_on_its_own() -> None:
    plan = _plan()
    est = estimate(plan, Device())
    [mnli] = [s for s in plan.by_kind("intermediate") if s.params["tasks"]]
    # Two targets share the [mnli] stage: run alone, each chain would train it once.
    assert unshared_hours(plan, est) - est.total() == pytest.approx(est.hours[mnli.key])


def test_unknown_sizes_are_reported_not_guessed() -> None:
    plan = _plan(model="xit-tiny", intermediate=[[], ["demo-nli"]], targets=["demo-para"], hparams={})
    est = estimate(plan, Device())
    assert set(est.missing.values()) == {"demo-nli", "demo-para"}
    plan = _plan(model="someone/unknown-model")
    assert set(estimate(plan, Device()).missing.values()) == {"model someone/unknown-model"}


def test_cli_cost_table_and_bad_options(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: c\nmodel: xlm-roberta-large\nintermediate: [[], [mnli]]\ntargets: [xnli, pawsx]\n")
    runner = CliRunner()
    r = runner.invoke(app, ["plan", str(spec), "--cost"])
    text = " ".join(r.output.split())  # the table wraps at the terminal's width
    assert r.exit_code == 0, r.output
    assert "GPU-hours" in text and "sharing saves" in text and "intermediate" in text
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps([{"device": "NVIDIA H200", "peak_tflops_per_device": 989.4, "mfu": 0.5}]))
    r = runner.invoke(app, ["plan", str(spec), "--cost", "--measured", str(bench)])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "NVIDIA H200 (measured)" in text and "50 % MFU" in text
    for bad, msg in ((["--mfu", "1.5"], "--mfu must be in (0, 1]"), (["--peak-tflops", "0"], "--peak-tflops"),
                     (["--measured", str(spec)], "not a bench/gpu_mfu.py --json result")):
        r = subprocess.run([sys.executable, "-m", "xit.cli", "plan", str(spec), "--cost", *bad],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (bad, r.stderr)
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1 and not r.stdout


def test_each_stage_is_costed_on_its_own_base_model() -> None:
    plan = _plan(models=["xlm-roberta-large", "xlm-roberta-base"])
    est = estimate(plan, Device(312.0, 0.35))
    mnli = {s.label: s for s in plan.by_kind("intermediate") if s.params["tasks"]}
    large, base = (est.hours[next(s.key for lbl, s in mnli.items() if m in lbl)] for m in ("large", "base"))
    per_token = [6 * n + 12 * layers * width * 128
                 for n, layers, width in ((LARGE, 24, 1024), (12 * (4 * 768 * 768 + 2 * 768 * 3072), 12, 768))]
    assert large / base == pytest.approx(per_token[0] / per_token[1])
    assert not est.missing


def test_plan_tree_header_carries_the_estimate(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: c\nmodel: xlm-roberta-large\nintermediate: [[], [mnli]]\ntargets: [xnli, bucc]\n")
    plan = build_plan(parse_spec(yaml.safe_load(spec.read_text()), spec))
    est = estimate(plan, Device())
    r = CliRunner().invoke(app, ["plan", str(spec)])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    # BUCC has no published corpus size here: the header says how many stages the figure covers.
    assert f"{len(plan.stages)} stages, ~{est.total():,.1f} GPU-hours for {len(est.hours)} of them" in text
