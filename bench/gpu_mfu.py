"""Training tokens/s and model FLOPs utilisation (MFU) of xit's training loop on an XLM-R-Large-shaped encoder.

A benchmark for the device machine (`bash bench/gpu.sh`), runnable anywhere: it trains through xit's own loop
(`xit.train.train`: accelerate, bf16 autocast, the optimizer and the schedule a stage uses) on random weights and
synthetic full-length sentence pairs (no padding, nothing downloads), times the steps after a warm-up from
inside the loop (the telemetry hook, called once per step after the loss is read, which waits for the GPU), and
prints:

- tokens/s (real tokens of the global batch per second) and examples/s;
- model FLOPs per token, counted as in PaLM (Chowdhery et al. 2022, appendix B): 6·N for the matrix multiplies
  of the forward and backward pass over the N non-embedding parameters (embedding lookups are not multiplies;
  the classification head is included in N), plus 12·L·d·S for attention's scores and weighted sums
  (L layers, width d, sequence S);
- MFU = tokens/s × FLOPs/token ÷ (peak bf16 FLOP/s × GPUs). The peak comes from a table of dense bf16 peaks by
  GPU name (vendor data sheets) or `--peak-tflops`; on CPU there is no table entry and MFU is printed only when
  `--peak-tflops` is given (the CPU figure is for the test that keeps this script working, not a result).

With several GPUs the same measurement is repeated on all of them (one process per GPU through
`torch.distributed.run`; xit's loop splits each global batch across the processes, as a stage pod given N
GPUs does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# XLM-R Large (Conneau et al. 2020): 24 layers, width 1024, 16 heads, FFN 4096, 250,002-token vocabulary.
SHAPES = {
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
              "vocab_size": 250002},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "vocab_size": 250002},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
             "vocab_size": 1000},
}

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, matched on the device
# name (first match wins, so the more specific names come first).
PEAK_BF16_TFLOPS = [
    ("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("GH200", 989.4), ("B200", 2250.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0), ("A10G", 70.0),
    ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0),
]

WORDS = [f"w{i}" for i in range(400)]


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return value
    return None


def build_encoder(shape: dict[str, int], out_dir: Path) -> Path:
    """A word-level tokenizer over WORDS and a random XLM-R-shaped encoder of `shape`, in the HF layout."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512)
    shape = dict(shape)
    vocab_size = max(shape.pop("vocab_size"), len(vocab))
    config = XLMRobertaConfig(vocab_size=vocab_size, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, max_position_embeddings=514, **shape)
    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def flops_per_token(model: torch.nn.Module, layers: int, hidden: int, seq_len: int) -> tuple[int, float]:
    """(non-embedding parameters N, training FLOPs per token 6N + 12·L·d·S)."""
    embedding = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." in f".{n}")
    n = sum(p.numel() for p in model.parameters()) - embedding
    return n, 6.0 * n + 12.0 * layers * hidden * seq_len


class StepClock:
    """Telemetry stand-in that notes when training steps end and how many tokens each trained on.

    xit's loop never waits for the GPU inside a step (the loss reaches telemetry as a device tensor; the token
    count, the whole global batch's real tokens, is counted on the host), so the clock waits
    (`torch.cuda.synchronize`) only at the steps it times: the end of the warm-up and the last step."""

    def __init__(self, timed_steps: set[int]) -> None:
        self.timed_steps = timed_steps
        self.times: dict[int, float] = {}
        self.tokens: list[Any] = []

    def step(self, task: str, *, loss: Any, lr: float, examples: int, tokens: Any) -> None:
        n = len(self.tokens) + 1
        self.tokens.append(tokens)
        if n in self.timed_steps:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times[n] = time.perf_counter()

    def eval_score(self, *args: Any, **kwargs: Any) -> None:
        pass


def measure(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train `args.steps` steps through xit's loop; rank 0 returns the measurement, other ranks None."""
    from xit.modeling import load_tokenizer, new_model
    from xit.tasks.registry import Task
    from xit.train import Job, NotMainRank, train

    shape = SHAPES[args.shape]
    cuda = torch.cuda.is_available()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    precision = args.precision or ("bf16" if cuda else "no")
    task = Task(name="bench-mfu", format="classification", languages=("en",), metric="accuracy",
                source="bench", family="bench", load_fn=lambda *a: [], labels=("0", "1"))
    with tempfile.TemporaryDirectory(prefix="xit-bench-mfu-") as tmp:
        enc_dir = build_encoder(shape, Path(tmp) / "encoder")
        tokenizer = load_tokenizer(enc_dir)
        model = new_model(enc_dir, [task], seed=0)
    rng = torch.Generator().manual_seed(0)
    half = args.seq_len  # more words than fit, so truncation makes every pair exactly seq_len tokens long

    def sentence() -> str:
        return " ".join(WORDS[i] for i in torch.randint(len(WORDS), (half,), generator=rng).tolist())

    n_rows = args.batch_size * args.steps
    rows = [{"text_a": sentence(), "text_b": sentence(), "label": i % 2} for i in range(n_rows)]
    hp = {"lr": 1e-5, "epochs": 1.0, "batch_size": args.batch_size, "max_length": args.seq_len,
          "warmup_ratio": 0.1, "weight_decay": 0.01, "max_grad_norm": 1.0, "eval_batch_size": args.batch_size,
          "max_train_examples": None, "max_dev_examples": None, "evals_per_epoch": 1.0, "precision": precision}
    clock = StepClock({args.warmup_steps, args.steps})
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        train(model, tokenizer, [Job(task=task, hp=hp, train_rows=rows, dev_rows=rows[: args.batch_size])],
              seed=0, sampler={"kind": "proportional"}, telemetry=clock)
    except NotMainRank:  # rank 0 times the run
        return None
    # Each rank trains on its share of the global batch; the global batch is `batch_size` pairs.
    timed = slice(args.warmup_steps, args.steps)
    seconds = clock.times[args.steps] - clock.times[args.warmup_steps]
    timed_steps = args.steps - args.warmup_steps
    # Real tokens the timed steps trained on: telemetry counts the global batch's, on every rank.
    tokens = int(sum(clock.tokens[timed]))
    n_params, per_token = flops_per_token(model, shape["num_hidden_layers"], shape["hidden_size"], args.seq_len)
    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    peak = args.peak_tflops or (peak_tflops(device) if cuda else None)
    tokens_per_s = tokens / seconds
    achieved = tokens_per_s * per_token
    return {
        "device": device, "gpus": world if cuda else 0, "shape": args.shape, "precision": precision,
        "attention": getattr(model.encoder.config, "_attn_implementation", None),
        "seq_len": args.seq_len, "global_batch": args.batch_size, "timed_steps": timed_steps,
        "seconds": seconds, "tokens": tokens,
        "tokens_per_s": tokens_per_s, "examples_per_s": args.batch_size * timed_steps / seconds,
        "non_embedding_params": n_params, "flops_per_token": per_token, "achieved_tflops": achieved / 1e12,
        "peak_tflops_per_device": peak,
        "mfu": achieved / (peak * 1e12 * max(1, world)) if peak else None,
    }


def row(r: dict[str, Any]) -> str:
    mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a (no bf16 peak known for this device)"
    return (f"{r['device']:<28} {max(r['gpus'], 1):>4} {r['precision']:>5} {r['tokens_per_s']:>12,.0f} "
            f"{r['examples_per_s']:>10,.1f} {r['achieved_tflops']:>9.2f} {mfu}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="large")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32, help="global batch (pairs per step)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup-steps", type=int, default=10, help="steps run before the clock starts")
    ap.add_argument("--precision", choices=["no", "bf16", "fp16"], help="default: bf16 on GPU, no on CPU")
    ap.add_argument("--peak-tflops", type=float, help="peak FLOP/s per device (TFLOP/s) for the MFU figure")
    ap.add_argument("--single", action="store_true", help="measure on one device only")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not 1 <= args.warmup_steps < args.steps:
        ap.error("--warmup-steps must be at least 1 and below --steps")

    if args.worker:  # one of N processes started by torch.distributed.run below
        result = measure(args)
        if result is not None and args.json:
            args.json.write_text(json.dumps(result))
        return 0

    results = [measure(args)]
    gpus = torch.cuda.device_count()
    if gpus > 1 and not args.single:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "all.json"
            same = ["--shape", args.shape, "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
                    "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps)]
            same += ["--precision", args.precision] if args.precision else []
            same += ["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else []
            subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", __file__,
                            "--worker", "--json", str(out), *same], check=True)
            results.append(json.loads(out.read_text()))
    print(f"xit training loop, XLM-R-{args.shape}-shaped encoder (random weights), sequence {args.seq_len}, "
          f"global batch {args.batch_size}, {args.steps - args.warmup_steps} timed steps after "
          f"{args.warmup_steps} warm-up, attention: {results[0]['attention']}")
    print(f"{'device':<28} {'gpus':>4} {'prec':>5} {'tokens/s':>12} {'ex/s':>10} {'TFLOP/s':>9} MFU")
    for r in results:
        print(row(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
