"""Named fine-tuning recipes: a spec's `recipe:` picks one as a whole, under the spec's own `hparams`.

* ``xtreme`` (the default) — xit's registry defaults, XTREME's per-task settings (google-research/xtreme
  `scripts/train_*.sh`); selecting it adds nothing, so specs without `recipe:` keep their stage keys.
* ``x-stilts`` — the jiant settings of Phang et al. (AACL 2020), "English intermediate-task training improves
  zero-shot cross-lingual transfer too", as nyu-mll/jiant runs the XTREME tasks:
  - lr 1e-5, warmup 10 % (`jiant/proj/main/runscript.py` RunConfiguration.learning_rate;
    `jiant/proj/main/scripts/configurator.py` SimpleAPIMultiTaskConfigurator.warmup_steps_proportion);
  - per-device batch 4 with gradient accumulation 8 for classification and tagging, 4 for QA (effective 32 /
    16) and target epochs XNLI 2, PAWS-X 5, UD-POS 10, PAN-X 10, QA 2
    (`jiant/scripts/benchmarks/xtreme/subscripts/d_write_configs.sh`);
  - max length 256, QA 384, BUCC/Tatoeba 512 (`.../xtreme/subscripts/c_tokenize_and_cache.sh`);
  - validation every 1,000 steps on 500 English dev examples, early stopping after 30 validations without
    improvement (`.../xtreme/subscripts/e_run_models.sh` --eval_every_steps 1000 --no_improvements_for_n_evals
    30; `xtreme_runconfig_writer.py` eval_subset_num 500; `jiant/proj/main/metarunner.py`
    JiantMetarunner.should_break_training);
  - intermediate training 3 epochs at max length 256 (`jiant/proj/simple/runscript.py` RunConfiguration
    num_train_epochs, max_seq_length), with the same batches, lr and validation as the targets.
  Dual encoders (LAReQA, Mewsli-X: XTREME-R, not in the paper) keep their XTREME-R recipe; a target the
  paper did not run (XCOPA, custom tasks) keeps its registry epochs.
"""

from __future__ import annotations

from typing import Any

RECIPES = ("xtreme", "x-stilts")
DEFAULT_RECIPE = "xtreme"

# d_write_configs.sh: --epochs per XTREME task (XQuAD and MLQA both train on SQuAD v1.1, TyDiQA on GoldP).
X_STILTS_TARGET_EPOCHS = {"xnli": 2, "pawsx": 5, "udpos": 10, "panx": 10, "xquad": 2, "mlqa": 2, "tydiqa": 2,
                          "udpos-r": 10, "panx-r": 10}
X_STILTS_INTERMEDIATE_EPOCHS = 3
X_STILTS_RETRIEVAL_MAX_LENGTH = 512
_X_STILTS_ALL = {"lr": 1e-5, "warmup_ratio": 0.1, "batch_size": 4, "eval_every_steps": 1000,
                 "max_dev_examples": 500, "patience": 30}


def recipe_hparams(recipe: str, task: Any, phase: str) -> dict[str, Any]:
    """What `recipe` sets for `task` in `phase` ("intermediate" | "target"), above the task's registry defaults."""
    if recipe == "xtreme" or task.format in ("dual_encoder", "retrieval"):
        return {}
    hp = dict(_X_STILTS_ALL)
    if task.format == "span_qa":
        hp.update(grad_accum_steps=4, max_length=384, doc_stride=128)
    else:
        hp.update(grad_accum_steps=8, max_length=256)
    if phase == "intermediate":
        hp["epochs"] = X_STILTS_INTERMEDIATE_EPOCHS
    elif task.name in X_STILTS_TARGET_EPOCHS:
        hp["epochs"] = X_STILTS_TARGET_EPOCHS[task.name]
    return hp


def recipe_retrieval(recipe: str) -> dict[str, Any]:
    """What `recipe` sets for retrieval stages (BUCC, Tatoeba) unless the spec's `retrieval:` sets it."""
    return {"max_length": X_STILTS_RETRIEVAL_MAX_LENGTH} if recipe == "x-stilts" else {}


def describe(hp: dict[str, Any]) -> str:
    """A stage's training recipe in a few words, for `xit plan`."""
    accum = int(hp.get("grad_accum_steps") or 1)
    batch = f"{hp['batch_size']}x{accum}" if accum > 1 else f"{hp['batch_size']}"
    parts = [f"lr {hp['lr']:g}", f"{hp['epochs']:g} ep", f"batch {batch}", f"len {hp['max_length']}"]
    if hp.get("eval_every_steps"):
        parts.append(f"dev {hp.get('max_dev_examples') or 'all'} every {hp['eval_every_steps']} steps")
    if hp.get("patience"):
        parts.append(f"patience {hp['patience']}")
    return ", ".join(parts)
