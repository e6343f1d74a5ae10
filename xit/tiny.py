"""xit-tiny: the small XLM-R-style model xit builds itself, so every sweep can run offline.

A BPE tokenizer trained with `tokenizers` on the demo world's text, a random-init `XLMRobertaConfig` encoder of
the shape in `xit.model_ids`, and multilingual masked-LM pretraining on the demo world (`pretrain_tiny`, through
xit's own training loop and the `mlm` format). It sits above `xit.modeling` and `xit.train` (it uses both), so
the model code imports neither the training loop nor the demo data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from xit.model_ids import TINY_FFN, TINY_HEADS, TINY_HIDDEN, TINY_LAYERS, TINY_VERSION
from xit.modeling import new_model

TINY_CONFIG = {
    "hidden_size": TINY_HIDDEN,
    "num_hidden_layers": TINY_LAYERS,
    "num_attention_heads": TINY_HEADS,
    "intermediate_size": TINY_FFN,
    "max_position_embeddings": 256 + 2,
}


def build_tiny(out_dir: Path, seed: int = 0, pretrain: bool = True) -> Path:
    """Build the tiny model into out_dir: a tokenizer, an encoder pretrained with masked-LM on the demo world's
    text in every demo language (`pretrain_tiny`), or left at its random init with ``pretrain=False``.
    Deterministic."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    from xit.tasks.demo import corpus

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    # Words split at spaces and before an apostrophe (agg writes the case suffixes of names and places after one,
    # as Turkish does: Ana'ga, Porto'de), so a name keeps the piece it has in every other language.
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(),
                                                 pre_tokenizers.Split("'", behavior="merged_with_next")])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=256,
    )
    config = XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(), pad_token_id=1, bos_token_id=0, eos_token_id=2,
        type_vocab_size=1, **TINY_CONFIG,
    )
    torch.manual_seed(seed)
    encoder = pretrain_tiny(config, tokenizer, seed=seed) if pretrain else XLMRobertaModel(config,
                                                                                           add_pooling_layer=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def pretrain_tiny(config: Any, tokenizer: Any, seed: int = 0) -> nn.Module:
    """Multilingual masked-LM pretraining of a fresh tiny encoder on the demo world's unlabelled text.

    The same ingredient researchers mix into intermediate training: the ``demo-mlm`` task (format ``mlm``:
    BERT's 80-10-10 masking of 15 % of the tokens, LM head tied to the input embeddings), one epoch of
    every demo language's lines interleaved, through `xit.train.train`. Returns the encoder.
    """
    import tempfile

    from transformers import XLMRobertaModel

    from xit.spec import GLOBAL_HPARAMS
    from xit.tasks.registry import get_task
    from xit.train import Job, train

    task = get_task("demo-mlm")
    hp = {**GLOBAL_HPARAMS, **task.defaults, "seed": seed}
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:  # the random-init encoder, loaded as intermediate training loads one
        XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(tmp, safe_serialization=True)
        model = new_model(Path(tmp), [task], seed=seed)
    train(model, tokenizer, [Job(task, hp, task.load(task.train_language, "train"),
                                 task.load(task.train_language, "dev")[: hp["max_dev_examples"]])],
          seed=seed, sampler={})
    model.eval()
    return model.encoder



def materialise_tiny(out_dir: Path, seed: int = 0) -> Path:
    """Write the pretrained tiny model of `seed` into out_dir (the base stage's output for ``xit-tiny``)."""
    return _copy_tree(_tiny_cached(seed), out_dir)


def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def _tiny_cached(seed: int) -> Path:
    """The pretrained tiny model of `seed`, built once per machine into $XIT_CACHE (default ~/.cache/xit).

    Its stage is keyed by TINY_VERSION and the seed like every stage; this cache only saves rebuilding
    (a minute of CPU) for every new store on the same machine, the tests' fresh stores above all.
    """
    import os
    import shutil
    import tempfile

    root = Path(os.environ.get("XIT_CACHE") or Path.home() / ".cache" / "xit") / "tiny"
    final = root / f"v{TINY_VERSION}-seed{seed}"
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".v{TINY_VERSION}-seed{seed}."))
    try:
        build_tiny(tmp / "model", seed=seed)
        try:
            os.replace(tmp / "model", final)  # atomic; another process may have won the race
        except OSError:
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
