"""Pipeline speed: tokenise once, evaluation throughput, and planning a 10,000-stage sweep.

`make bench` runs this after `train_throughput.py`. A benchmark, not a test: it prints what it measured on
this machine in one run (each figure the best of `--repeats`), with the machine and the settings.

- **Tokenise once**: featurising one training set for N stages that all train on it (the target stage of
  each of the paper grid's 11 intermediate branches), without the store's feature cache (every stage
  featurises, as before) and with it (`xit.features.FeatureCache` on a local store: one stage featurises, the
  others read the checked entry).
- **Evaluation**: examples/s of `Format.logits`, the inference every evaluation runs (batches of the
  features sorted by length, under `no_grad`), against the same batches in input order (what it did before).
- **Planning**: wall time of `xit plan SPEC` (the tree, piped) and `xit validate SPEC` as subprocesses on a
  generated sweep of ~10,000 stages (56 intermediate configurations × 9 XTREME targets × 12 seeds), the
  interpreter start and imports included. Goals: plan < 2 s, validate < 1 s.

Data and model as in `train_throughput.py`: PAWS-X German dev pairs (or the demo paraphrase task), a BPE
tokenizer trained on them, an XLM-R-shaped encoder with random weights. Nothing downloads.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from train_throughput import SHAPE, build_encoder, load_pairs  # noqa: E402

INTERMEDIATE = ["anli-plus", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "socialiqa", "squad",
                "squad2", "sst2"]
XTREME = ["xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"]


def best_of(repeats: int, fn: Any) -> float:
    """The shortest wall time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_task() -> Any:
    from xit.tasks.registry import Task

    return Task(name="bench-pairs", format="classification", languages=("en",), metric="accuracy",
                source="bench", family="bench", load_fn=lambda *a: [], labels=("0", "1"))


def tokenise_once(enc_dir: Path, rows: list[dict], hp: dict, stages: int, repeats: int) -> dict[str, float]:
    from xit.features import FeatureCache
    from xit.formats import get_format
    from xit.modeling import load_tokenizer
    from xit.store import LocalStore

    task, fmt, tokenizer = bench_task(), get_format("classification"), load_tokenizer(enc_dir)

    def compute() -> list[dict]:
        return fmt.featurize(rows, tokenizer, task, hp, train=True)

    def without() -> None:
        for _ in range(stages):
            compute()

    def with_cache() -> None:
        with tempfile.TemporaryDirectory() as d:
            store = LocalStore(d)
            for _ in range(stages):  # each stage opens the store afresh, as separate processes would
                FeatureCache(store).get(task, "bench-data", tokenizer, hp, True, compute)

    return {"without": best_of(repeats, without), "with": best_of(repeats, with_cache)}


def evaluation(enc_dir: Path, rows: list[dict], hp: dict, batch_size: int, repeats: int) -> dict[str, float]:
    from xit.encoding import collate
    from xit.formats import get_format
    from xit.modeling import load_tokenizer, new_model

    task, fmt, tokenizer = bench_task(), get_format("classification"), load_tokenizer(enc_dir)
    model = new_model(enc_dir, [task], seed=1)
    feats = fmt.featurize(rows, tokenizer, task, hp, train=False)
    device = torch.device("cpu")

    @torch.no_grad()
    def unsorted() -> None:  # the batches in input order: what evaluation did before it sorted by length
        model.eval()
        for start in range(0, len(feats), batch_size):
            batch = collate(feats[start:start + batch_size], tokenizer.pad_token_id)
            fmt.forward(model, task.name, batch)

    def sorted_() -> None:
        fmt.logits(model, task.name, feats, tokenizer, batch_size, device)

    n = len(feats)
    return {"examples": n, "unsorted": n / best_of(repeats, unsorted), "sorted": n / best_of(repeats, sorted_)}


def sweep_spec(seeds: int) -> dict[str, Any]:
    branches = [[]] + [[t] for t in INTERMEDIATE] + [list(p) for p in itertools.combinations(INTERMEDIATE, 2)]
    return {"name": "bench-sweep", "model": "xlm-roberta-large", "intermediate": branches, "targets": XTREME,
            "seeds": list(range(1, seeds + 1))}


def planning(seeds: int, repeats: int) -> dict[str, float]:
    import yaml

    from xit.plan import build_plan
    from xit.spec import parse_spec

    with tempfile.TemporaryDirectory() as d:
        spec = Path(d) / "sweep.yaml"
        spec.write_text(yaml.safe_dump(sweep_spec(seeds)))
        stages = len(build_plan(parse_spec(sweep_spec(seeds), spec)).stages)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

        def cli(*args: str) -> None:
            subprocess.run([sys.executable, "-m", "xit.cli", *args, str(spec)], check=True, env=env, cwd=d,
                           stdout=subprocess.DEVNULL)

        return {"stages": stages, "plan": best_of(repeats, lambda: cli("plan")),
                "plan_json": best_of(repeats, lambda: cli("plan", "--json")),
                "validate": best_of(repeats, lambda: cli("validate"))}


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU)"
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, {gpu}, load average {load}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stages", type=int, default=11, help="stages sharing one training set (default 11)")
    ap.add_argument("--seeds", type=int, default=12, help="seeds of the generated sweep (12: ~10,700 stages)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--rows", type=int, default=0, help="use only this many pairs (0: all)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    name, rows = load_pairs()
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    rows = rows[: args.rows] if args.rows else rows
    n_dev = len(rows) // 4  # as train_throughput.py: 1/4 dev (evaluated), 3/4 train (featurised per stage)
    dev_rows, train_rows = rows[:n_dev], rows[n_dev:]
    hp = {"max_length": args.max_length, "doc_stride": 128, "max_train_examples": None, "seed": 1}
    print(f"machine: {machine()}")
    print(f"data: {name}, {len(train_rows)} train / {len(dev_rows)} dev pairs, max length {args.max_length}; "
          f"model: XLM-R shape {SHAPE}, "
          f"random weights; best of {args.repeats}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = build_encoder(rows, Path(tmp) / "encoder", vocab=8000)
        tok = tokenise_once(enc_dir, train_rows, hp, args.stages, args.repeats)
        ev = evaluation(enc_dir, dev_rows, hp, args.eval_batch_size, args.repeats)
    pl = planning(args.seeds, args.repeats)

    table = [
        ("tokenise once", f"featurise {len(train_rows)} training pairs for {args.stages} stages, without / with "
                          "the cache",
         f"{tok['without']:.2f} s / {tok['with']:.2f} s", f"{tok['without'] / tok['with']:.1f}x faster"),
        ("evaluation", f"{ev['examples']} dev pairs, batch {args.eval_batch_size}, input order / sorted by length",
         f"{ev['unsorted']:.0f} / {ev['sorted']:.0f} examples/s", f"{ev['sorted'] / ev['unsorted']:.2f}x"),
        ("xit plan", f"{pl['stages']:,}-stage sweep, tree piped (--json)",
         f"{pl['plan']:.2f} s ({pl['plan_json']:.2f} s)", "goal < 2 s"),
        ("xit validate", f"{pl['stages']:,}-stage sweep", f"{pl['validate']:.2f} s", "goal < 1 s"),
    ]
    print()
    print("| measure | settings | result | |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
