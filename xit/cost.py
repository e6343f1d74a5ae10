"""GPU-hour estimates of a plan (`xit plan --cost`), before anything runs.

A stage's cost is the model FLOPs it needs divided by what a GPU sustains:

    seconds = examples × tokens per example × FLOPs per token ÷ (peak FLOP/s × MFU)

* FLOPs per token as in PaLM (Chowdhery et al. 2022, appendix B): training 6·N + 12·L·d·S, inference
  2·N + 4·L·d·S, with N the encoder's non-embedding parameters, L layers, width d, sequence length S.
* Tokens per example: the stage's `max_length` (times the number of choices for multiple choice) — an upper
  bound, reached when batches are padded to the longest example; length-grouped batches need less.
* Examples: the task's training-set size (published sizes below) × epochs, capped by `max_train_examples`;
  evaluation: every evaluated language's test set; retrieval: both sides of each language's test set. Dev
  evaluations during training are left out (a few percent of a training stage).
* Peak and MFU: an A100's dense bf16 peak (312 TFLOP/s) at 35 % MFU unless told otherwise (`--peak-tflops`,
  `--mfu`), or the device and MFU `bench/gpu_mfu.py --json` measured (`--measured FILE`).

Tasks without a size in the table (custom descriptors, the Finnish/Hungarian sets) and base models of unknown
shape are reported as not estimated, never guessed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.model_ids import TINY_FFN, TINY_HIDDEN, TINY_LAYERS, TINY_MODEL, is_local_path

# (training examples, test examples per language). Sources: XTREME (Hu et al. 2020, Table 1: XNLI, PAWS-X,
# UD-POS, PAN-X, XQuAD, MLQA, TyDiQA-GoldP, BUCC, Tatoeba; where the test size is a range, its upper end);
# GLUE (Wang et al. 2019: MNLI, QQP, SST-2); SQuAD v1.1 / v2.0 (Rajpurkar et al. 2016, 2018); HellaSwag, Cosmos QA,
# Social IQa and CommonsenseQA from their papers' train splits; ANLI+ = ANLI R1-R3 + MNLI + SNLI + NLI-FEVER
# train (Nie et al. 2020); CCGbank sections 02-21; XCOPA (Ponti et al. 2020: COPA's 400 train, 500 test).
# BUCC is not here: XTREME's table counts its gold pairs, but mining reads the whole corpora (10^5 sentences a side).
TASK_SIZES: dict[str, tuple[int | None, int | None]] = {
    "mnli": (392_702, None), "anli-plus": (1_314_065, None), "qqp": (363_846, None), "sst2": (67_349, None),
    "squad": (87_599, None), "squad2": (130_319, None), "hellaswag": (39_905, None), "cosmosqa": (25_262, None),
    "socialiqa": (33_410, None), "commonsenseqa": (9_741, None), "ccg": (39_604, None),
    "xnli": (392_702, 5_010), "pawsx": (49_401, 2_000), "udpos": (21_253, 20_436), "udpos-r": (21_253, 20_436),
    "panx": (20_000, 10_000), "panx-r": (20_000, 10_000), "xquad": (87_599, 1_190), "mlqa": (87_599, 11_590),
    "tydiqa": (3_696, 2_719), "xcopa": (400, 500), "tatoeba": (None, 1_000),
    "tatoeba-r": (None, 1_000),
}

# Encoder shapes of the base models xit names in its pipelines: layers, width, FFN width, attention width
# (heads × head size), gated FFN (mT5). From each model's published config.json.
MODEL_SHAPES: dict[str, tuple[int, int, int, int, bool]] = {
    "xlm-roberta-large": (24, 1024, 4096, 1024, False), "FacebookAI/xlm-roberta-large": (24, 1024, 4096, 1024, False),
    "xlm-roberta-base": (12, 768, 3072, 768, False), "FacebookAI/xlm-roberta-base": (12, 768, 3072, 768, False),
    "bert-base-multilingual-cased": (12, 768, 3072, 768, False),
    "google-bert/bert-base-multilingual-cased": (12, 768, 3072, 768, False),
    "google/mt5-small": (8, 512, 1024, 384, True), "google/mt5-base": (12, 768, 2048, 768, True),
    "google/mt5-large": (24, 1024, 2816, 1024, True), "google/mt5-xl": (24, 2048, 5120, 2048, True),
}

DEFAULT_PEAK_TFLOPS = 312.0  # A100, dense bf16
DEFAULT_MFU = 0.35


@functools.lru_cache(maxsize=64)
def _cached_shape(model: str) -> Shape | None:
    return _model_shape(model)


@dataclass(frozen=True)
class Shape:
    layers: int
    width: int
    ffn: int
    attention: int
    gated: bool = False

    @property
    def params(self) -> int:
        """Non-embedding parameters of the encoder's layers (weights; biases and norms are < 1 %)."""
        ffn = (3 if self.gated else 2) * self.width * self.ffn
        return self.layers * (4 * self.width * self.attention + ffn)

    def train_flops(self, seq: int) -> float:
        return 6.0 * self.params + 12.0 * self.layers * self.width * seq

    def forward_flops(self, seq: int) -> float:
        return 2.0 * self.params + 4.0 * self.layers * self.width * seq


def model_shape(model: str) -> Shape | None:
    """The encoder shape of a model id or local directory (its config.json); None when it is not known."""
    return _cached_shape(model)


def _model_shape(model: str) -> Shape | None:
    """The encoder shape of a model id or local directory (its config.json); None when it is not known."""
    if model == TINY_MODEL:
        return Shape(TINY_LAYERS, TINY_HIDDEN, TINY_FFN, TINY_HIDDEN)
    if model in MODEL_SHAPES:
        return Shape(*MODEL_SHAPES[model])
    if is_local_path(model):
        path = Path(model).expanduser() / "config.json"
        try:
            c = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if "d_model" in c:  # T5 family
            gated = str(c.get("feed_forward_proj", "")).startswith("gated")
            return Shape(int(c["num_layers"]), int(c["d_model"]), int(c["d_ff"]),
                         int(c["num_heads"]) * int(c["d_kv"]), gated)
        if {"num_hidden_layers", "hidden_size", "intermediate_size"} <= set(c):
            return Shape(int(c["num_hidden_layers"]), int(c["hidden_size"]), int(c["intermediate_size"]),
                         int(c["hidden_size"]))
    return None


@dataclass
class Device:
    peak_tflops: float = DEFAULT_PEAK_TFLOPS
    mfu: float = DEFAULT_MFU
    name: str = "A100 (assumed)"

    @classmethod
    def measured(cls, path: Path) -> Device:
        """The device and MFU a `bench/gpu_mfu.py --json` run measured (its first, one-GPU row)."""
        try:
            rows = json.loads(path.read_text())
            r = rows[0] if isinstance(rows, list) else rows
            peak, mfu = float(r["peak_tflops_per_device"]), float(r["mfu"])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise XitError(f"{path}: not a bench/gpu_mfu.py --json result with a peak and an MFU ({e})") from None
        return cls(peak, mfu, f"{r.get('device', '?')} (measured)")

    def seconds(self, flops: float) -> float:
        return flops / (self.peak_tflops * 1e12 * self.mfu)


@dataclass
class Estimate:
    hours: dict[str, float] = field(default_factory=dict)  # stage key -> GPU-hours
    missing: dict[str, str] = field(default_factory=dict)  # stage key -> the task (or model) without a size

    def total(self, keys: Any = None) -> float:
        return sum(h for k, h in self.hours.items() if keys is None or k in keys)


def _tokens(hp: dict[str, Any], task: Any) -> int:
    return int(hp.get("max_length") or 128) * max(1, int(getattr(task, "num_choices", 0) or 0))


def stage_flops(stage: Any, shape: Shape) -> tuple[float | None, str]:
    """FLOPs of one stage, or (None, the task whose data size is not known)."""
    from xit.tasks.registry import get_task

    p = stage.params
    if stage.kind == "report" or (stage.kind == "intermediate" and not p.get("tasks")):
        return 0.0, ""
    if stage.kind in ("intermediate", "target"):
        jobs = p["tasks"] if stage.kind == "intermediate" else [{"name": p["task"], "hp": p["hp"]}]
        total = 0.0
        for j in jobs:
            base = j["name"].partition("@")[0]
            train = TASK_SIZES.get(base, (None, None))[0]
            if train is None:
                return None, j["name"]
            hp = j["hp"]
            n = min(train, int(hp["max_train_examples"])) if hp.get("max_train_examples") else train
            seq = _tokens(hp, get_task(j["name"]))
            total += n * float(hp.get("epochs", 1)) * seq * shape.train_flops(int(hp.get("max_length") or 128))
        return total, ""
    test = TASK_SIZES.get(p["task"], (None, None))[1]
    if test is None:
        return None, p["task"]
    langs = len(p.get("languages") or [])
    if stage.kind == "retrieval":
        seq = int((p.get("retrieval") or {}).get("max_length") or 512)
        return 2.0 * langs * test * seq * shape.forward_flops(seq), ""
    hp = p.get("hp") or {}
    n = min(test, int(hp["max_eval_examples"])) if hp.get("max_eval_examples") else test
    seq = int(hp.get("max_length") or 128)
    return langs * n * _tokens(hp, get_task(p["task"])) * shape.forward_flops(seq), ""


def estimate(plan: Any, device: Device) -> Estimate:
    """GPU-hours of every stage, each on the base model its chain of stages starts from (`models:` sweeps
    several)."""
    by_key = {s.key: s for s in plan.stages}
    base_of: dict[str, str] = {}

    def base(key: str) -> str:
        if key not in base_of:
            s = by_key[key]
            base_of[key] = s.params.get("model", "") if not s.inputs else base(s.inputs[0])
        return base_of[key]

    est = Estimate()
    for s in plan.stages:
        model = base(s.key) if s.kind != "report" else ""
        shape = model_shape(model) if s.kind != "report" else Shape(0, 0, 0, 0)
        if shape is None:
            est.missing[s.key] = f"model {model}"
            continue
        flops, why = stage_flops(s, shape)
        if flops is None:
            est.missing[s.key] = why
        else:
            est.hours[s.key] = device.seconds(flops) / 3600
    return est


def unshared_hours(plan: Any, est: Estimate) -> float:
    """GPU-hours if every report entry (configuration × target × seed) ran its chain of stages on its own."""
    by_key = {s.key: s for s in plan.stages}
    total = 0.0
    for report in plan.by_kind("report"):
        for entry in report.params["entries"]:
            key: str | None = entry["key"]
            while key is not None:
                total += est.hours.get(key, 0.0)
                inputs = by_key[key].inputs
                key = inputs[0] if inputs else None
    return total
