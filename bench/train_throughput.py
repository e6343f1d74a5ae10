"""Training throughput: xit's training loop vs Hugging Face's `Trainer`, same model, data and steps.

`make bench` runs this. It is a benchmark, not a test: it prints what it measured on this machine in one run,
as ratios against the peer researchers use today (`transformers.Trainer`, with its usual `group_by_length`
off and on), beside the final English dev accuracy of each, so a faster loop cannot hide a worse model.

Set-up (all offline, random weights, nothing downloads):
- data: PAWS-X German dev pairs (../shared/data/pawsx/de.dev.tsv, real sentence pairs with a real length
  distribution) when present, else (or with ``--data demo-para``) the demo paraphrase task, which a random-weight
  encoder learns within the bench's steps at a high learning rate, so the dev scores compare the models;
  3/4 train, 1/4 dev;
- tokenizer: a BPE tokenizer trained on the training sentences (so token lengths are realistic);
- model: an XLM-R-shaped encoder (hidden 256, 4 layers, 4 heads, FFN 1024; `--shape tiny`: hidden 64, 2 layers,
  for a smoke run) with RoBERTa's classification head, identical initial weights for every run;
- training: the same batch size, max length, steps, lr schedule, weight decay, clipping and seed (run r of
  ``--repeats`` uses seed r + 1; the dev score printed is the mean over runs); each
  system evaluates on the dev set once, at the end, and that evaluation is inside the timed span.

Each configuration runs `--repeats` times, interleaved, and the best examples/s counts (the least disturbed
by whatever else the machine does). Padding share = real tokens / tokens in padded batches, for the batches
each system actually trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAWSX = ROOT.parent / "shared" / "data" / "pawsx" / "de.dev.tsv"
SHAPES = {"small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
          "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}}
SHAPE = SHAPES["small"]  # the benchmark's (bench/pipeline.py's too)


def load_pairs(data: str = "auto") -> tuple[str, list[dict[str, Any]]]:
    """PAWS-X German dev pairs (``pawsx``; ``auto``: when present) or the demo's paraphrase task (``demo-para``,
    which a random-weight encoder learns within the bench's steps, so the dev scores compare models)."""
    if data == "pawsx" and not PAWSX.exists():
        raise SystemExit(f"bench: {PAWSX} is not there (../shared/data); use --data demo-para")
    if data != "demo-para" and PAWSX.exists():
        with PAWSX.open(encoding="utf-8", newline="") as f:
            rows = [{"text_a": r["sentence1"], "text_b": r["sentence2"], "label": int(r["label"])}
                    for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
        return f"PAWS-X de dev ({PAWSX.name})", rows
    from xit.tasks.registry import get_task

    task = get_task("demo-para")
    return "demo-para (synthetic)", task.load("en", "train") + task.load("en", "dev")


def build_encoder(rows: list[dict], out_dir: Path, vocab: int, shape: dict[str, int] = SHAPE) -> Path:
    """A BPE tokenizer trained on the rows and a random XLM-R-shaped encoder, saved in the HF layout."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator((t for r in rows for t in (r["text_a"], r["text_b"])),
                            trainer=trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                                        show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512)
    config = XLMRobertaConfig(vocab_size=tok.get_vocab_size(), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, max_position_embeddings=514, **shape)
    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def padding_share(lengths_per_batch: list[list[int]]) -> float:
    real = sum(sum(b) for b in lengths_per_batch)
    padded = sum(max(b) * len(b) for b in lengths_per_batch)
    return real / padded


def run_xit(enc_dir: Path, train_rows: list[dict], dev_rows: list[dict], hp: dict, seed: int) -> dict:
    from xit.formats import get_format
    from xit.modeling import load_tokenizer, new_model
    from xit.tasks.registry import Task
    from xit.train import BatchOrder, Job, _feature_length, train

    task = Task(name="bench-pairs", format="classification", languages=("en",), metric="accuracy",
                source="bench", family="bench", load_fn=lambda *a: [], labels=("0", "1"))
    tokenizer = load_tokenizer(enc_dir)
    model = new_model(enc_dir, [task], seed=seed)
    job = Job(task=task, hp=hp, train_rows=train_rows, dev_rows=dev_rows)
    torch.manual_seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    record = train(model, tokenizer, [job], seed=seed, sampler={"kind": "proportional"})
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    feats = get_format("classification").featurize(train_rows, tokenizer, task, hp, train=True)
    steps = record["steps"]
    lengths = [_feature_length(f) for f in feats]
    order = BatchOrder(len(feats), hp["batch_size"], seed, 0, lengths if hp.get("group_by_length") else None)
    per_batch = [[lengths[i] for i in order(p)] for p in range(steps)]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "steps": steps, "examples": sum(len(b) for b in per_batch),
            "dev_accuracy": record["dev"][-1]["metrics"][task.name]["accuracy"],
            "padding_share": padding_share(per_batch)}


def _sampling(group_by_length: bool) -> dict[str, Any]:
    """The Trainer's length grouping: `group_by_length` until transformers 5.x renamed it to
    `train_sampling_strategy="group_by_length"`."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length" if group_by_length else "random"}
    return {"group_by_length": group_by_length}


def run_trainer(enc_dir: Path, train_rows: list[dict], dev_rows: list[dict], hp: dict, seed: int, steps: int,
                group_by_length: bool) -> dict:
    from datasets import Dataset
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        XLMRobertaForSequenceClassification,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(enc_dir))

    def encode(rows: list[dict]) -> Dataset:
        enc = tokenizer([r["text_a"] for r in rows], [r["text_b"] for r in rows], truncation=True,
                        max_length=hp["max_length"])
        return Dataset.from_dict({**enc, "labels": [r["label"] for r in rows]})

    train_ds, dev_ds = encode(train_rows), encode(dev_rows)
    model = XLMRobertaForSequenceClassification.from_pretrained(str(enc_dir), num_labels=2)
    lengths: list[list[int]] = []
    training = [True]  # the phase, not model.training: the loader forms the first batches before train mode

    class Recording(DataCollatorWithPadding):
        def __call__(self, features):  # the batches the Trainer really forms, for the padding share
            if training[0]:
                lengths.append([len(f["input_ids"]) for f in features])
            return super().__call__(features)

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=hp["batch_size"],
            per_device_eval_batch_size=hp["eval_batch_size"], learning_rate=hp["lr"],
            warmup_steps=int(hp["warmup_ratio"] * steps), weight_decay=hp["weight_decay"],
            max_grad_norm=hp["max_grad_norm"], lr_scheduler_type="linear", seed=seed, data_seed=seed,
            **_sampling(group_by_length), save_strategy="no", eval_strategy="no", logging_strategy="no",
            report_to=[], disable_tqdm=True, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())

        def accuracy(p):
            return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean() * 100)}

        trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=dev_ds,
                          data_collator=Recording(tokenizer), compute_metrics=accuracy)
        trainer.remove_callback(PrinterCallback)  # its per-log dict prints would bury the table
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        training[0] = False
        metrics = trainer.evaluate()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "steps": steps, "examples": sum(len(b) for b in lengths),
            "dev_accuracy": metrics["eval_accuracy"], "padding_share": padding_share(lengths)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--rows", type=int, default=0, help="use only this many pairs (0: all; a smoke run)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="small",
                    help="the encoder's shape (small: hidden 256, 4 layers; tiny: hidden 64, 2 layers, a smoke run)")
    ap.add_argument("--data", choices=("auto", "pawsx", "demo-para"), default="auto",
                    help="PAWS-X de dev (real lengths; auto: when ../shared/data has it) or demo-para (learnable)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    name, rows = load_pairs(args.data)
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order][:args.rows or None]
    n_dev = len(rows) // 4
    dev_rows, train_rows = rows[:n_dev], rows[n_dev:]
    hp = {"lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "max_length": args.max_length,
          "warmup_ratio": 0.1, "weight_decay": 0.01, "max_grad_norm": 1.0, "eval_batch_size": 64,
          "max_train_examples": None, "max_dev_examples": None, "evals_per_epoch": 1.0 / args.epochs,
          "precision": "no"}
    steps = math.ceil(math.ceil(len(train_rows) / args.batch_size) * args.epochs)
    print(f"data: {name}: {len(train_rows)} train / {len(dev_rows)} dev pairs; "
          f"model: XLM-R shape {SHAPES[args.shape]}; "
          f"{steps} steps of {args.batch_size}, max length {args.max_length}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {'CUDA' if torch.cuda.is_available() else 'CPU'}", flush=True)

    # Repeat r trains every system with seed r + 1: throughput takes the best repeat, the dev score the mean
    # over repeats (a small model's score moves with the seed).
    configs = {"xit": lambda d, seed: run_xit(d, train_rows, dev_rows, hp, seed=seed),
               "xit group_by_length": lambda d, seed: run_xit(d, train_rows, dev_rows,
                                                              {**hp, "group_by_length": True}, seed=seed),
               "Trainer": lambda d, seed: run_trainer(d, train_rows, dev_rows, hp, seed, steps,
                                                      group_by_length=False),
               "Trainer group_by_length": lambda d, seed: run_trainer(d, train_rows, dev_rows, hp, seed, steps,
                                                                      group_by_length=True)}
    results: dict[str, list[dict]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        enc_dir = build_encoder(train_rows, Path(tmp) / "encoder", vocab=8000, shape=SHAPES[args.shape])
        for r in range(args.repeats):
            for k, fn in (configs.items() if r % 2 == 0 else reversed(configs.items())):
                res = fn(enc_dir, r + 1)
                res["examples_per_s"] = res["examples"] / res["seconds"]
                res["examples_per_cpu_s"] = res["examples"] / res["cpu_seconds"]
                results[k].append(res)
                print(f"  run {r + 1}/{args.repeats} {k:<24} {res['examples_per_s']:8.1f} examples/s "
                      f"{res['examples_per_cpu_s']:8.1f} per CPU-s  dev acc {res['dev_accuracy']:5.1f}", flush=True)

    best = {k: max(v, key=lambda x: x["examples_per_s"]) for k, v in results.items()}
    best_cpu = {k: max(x["examples_per_cpu_s"] for x in v) for k, v in results.items()}
    peer, peer_cpu = best["Trainer"]["examples_per_s"], best_cpu["Trainer"]
    print()
    print(f"{'system':<26}{'examples/s':>12}{'vs Trainer':>12}{'per CPU-s':>11}{'vs Trainer':>12}{'dev acc':>10}"
          f"{'real tokens':>13}")
    for k, b in best.items():
        print(f"{k:<26}{b['examples_per_s']:>12.1f}{b['examples_per_s'] / peer:>11.2f}x"
              f"{best_cpu[k]:>11.1f}{best_cpu[k] / peer_cpu:>11.2f}x"
              f"{np.mean([x['dev_accuracy'] for x in results[k]]):>10.1f}{b['padding_share'] * 100:>12.1f}%")
    print("\nratios are over the Trainer's (group_by_length off), best of "
          f"{args.repeats} interleaved runs; 'per CPU-s' = examples per second of this process's CPU time (with "
          "--threads 1 it barely moves when other work shares the machine; wall-clock examples/s does); "
          f"'dev acc' = mean over the runs (seeds 1..{args.repeats}); "
          "'real tokens' = share of non-padding tokens in the trained batches")
    if args.json:
        args.json.write_text(json.dumps({"data": name, "steps": steps, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
