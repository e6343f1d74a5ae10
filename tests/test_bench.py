"""The benchmarks keep working: the GPU MFU script runs on CPU with a tiny shape and counts what it says."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_mfu", ROOT / "bench" / "gpu_mfu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peak_table_matches_device_names() -> None:
    mod = _module()
    assert mod.peak_tflops("NVIDIA H200") == 989.4
    assert mod.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert mod.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert mod.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert mod.peak_tflops("NVIDIA L40S") == 362.1
    assert mod.peak_tflops("NVIDIA L4") == 121.0
    assert mod.peak_tflops("Tesla T4") is None


@pytest.mark.slow
def test_gpu_mfu_script_runs_on_cpu_with_a_tiny_shape(tmp_path: Path) -> None:
    out = tmp_path / "mfu.json"
    seq, batch, steps, warmup = 32, 4, 5, 2
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_mfu.py"), "--shape", "tiny", "--seq-len",
                           str(seq), "--batch-size", str(batch), "--steps", str(steps), "--warmup-steps",
                           str(warmup), "--peak-tflops", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [r] = json.loads(out.read_text())
    # Every pair is cut to exactly `seq` tokens: the timed steps trained on batch × seq × steps real tokens.
    assert r["tokens"] == batch * seq * (steps - warmup)
    # Non-embedding parameters of the tiny shape, by hand: per layer attention 4(d²+d), FFN 2·d·f + f + d and
    # two LayerNorms 2·2d; the classification head d² + d + 2d + 2.
    d, f, layers = 64, 128, 2
    n = layers * (4 * (d * d + d) + 2 * d * f + f + d + 4 * d) + (d * d + d + 2 * d + 2)
    assert r["non_embedding_params"] == n
    assert r["flops_per_token"] == 6 * n + 12 * layers * d * seq
    assert r["tokens_per_s"] == pytest.approx(r["tokens"] / r["seconds"])
    assert r["mfu"] == pytest.approx(r["tokens_per_s"] * r["flops_per_token"] / 2e12)
    assert "MFU" in proc.stdout and "CPU" in proc.stdout


@pytest.mark.slow
def test_pipeline_bench_prints_its_table_with_the_machine(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--rows", "80", "--stages", "3",
                           "--seeds", "1", "--repeats", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "cores" in out and ("CPU" in out or "GPU" in out)
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert {"tokenise once", "evaluation", "xit plan", "xit validate"} <= set(rows)
    assert "featurise 60 training pairs for 3 stages" in rows["tokenise once"]
    assert "20 dev pairs" in rows["evaluation"]
    assert "897-stage sweep" in rows["xit plan"]  # 56 configurations × 9 XTREME targets × 1 seed


@pytest.mark.slow
def test_training_bench_runs_xit_and_the_trainer_on_the_same_batches(tmp_path: Path) -> None:
    """`make bench`'s training comparison on a few rows and the tiny shape (the model's size is not what this
    checks; the fixed start-up costs most): both loops train the same number of examples, the padding shares
    are those of the batches each formed, and length grouping raises them."""
    out = tmp_path / "train.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train_throughput.py"), "--rows", "96",
                           "--shape", "tiny", "--batch-size", "8", "--epochs", "1", "--repeats", "1", "--threads", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = {k: v[0] for k, v in json.loads(out.read_text())["runs"].items()}
    assert set(runs) == {"xit", "xit group_by_length", "Trainer", "Trainer group_by_length"}
    assert {r["steps"] for r in runs.values()} == {9}  # 72 training rows / 8
    assert {r["examples"] for r in runs.values()} == {72}
    for r in runs.values():
        assert 0 < r["padding_share"] <= 1 and 0 <= r["dev_accuracy"] <= 100
        assert r["cpu_seconds"] > 0 and r["examples_per_cpu_s"] > 0
    assert runs["xit group_by_length"]["padding_share"] > runs["xit"]["padding_share"]
    assert runs["Trainer group_by_length"]["padding_share"] > runs["Trainer"]["padding_share"]
    assert "vs Trainer" in proc.stdout and "per CPU-s" in proc.stdout
