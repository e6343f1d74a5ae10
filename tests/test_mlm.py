"""Masked-language modelling as an intermediate task (`mlm`): seeded masking, local text files, the mixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xit.errors import XitError
from xit.formats import get_format
from xit.formats.mlm import mask_tokens
from xit.modeling import load_tokenizer, new_model
from xit.plan import build_plan
from xit.spec import GLOBAL_HPARAMS, parse_spec
from xit.tasks.registry import DataSource, get_task
from xit.train import Job, train

EN = ["The cat sat on the mat.", "Ana lives in Porto and paints houses.", "", "Ben sells bread in the market.",
      "The sky is blue and the sea is green.", "Carla sings songs every morning."]
DE = ["Die Katze sitzt auf der Matte.", "Ana wohnt in Porto und malt Häuser.", "Ben verkauft Brot auf dem Markt.",
      "Der Himmel ist blau und das Meer ist grün."]


def write_text(d: Path, langs: dict[str, list[str]]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for lang, lines in langs.items():
        (d / f"{lang}.train.txt").write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
        (d / f"{lang}.dev.txt").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    return d


def test_xit_tiny_has_a_mask_token(tiny_tokenizer) -> None:  # noqa: ANN001
    assert tiny_tokenizer.mask_token == "<mask>" and tiny_tokenizer.mask_token_id == 4
    assert tiny_tokenizer.mask_token_id in tiny_tokenizer.all_special_ids


def test_masking_follows_berts_proportions_and_is_seeded() -> None:
    ids = list(range(10, 20010))
    special = [i in (0, len(ids) - 1) for i in range(len(ids))]
    vocab = np.arange(5, 30000)

    def masked(seed: int) -> tuple[list[int], list[int]]:
        return mask_tokens(ids, special, mask_id=4, vocab=vocab, rng=np.random.default_rng(seed))

    out, labels = masked(1)
    assert masked(1) == (out, labels) and masked(2) != (out, labels)
    chosen = [i for i, lab in enumerate(labels) if lab != -100]
    assert 0 not in chosen and len(ids) - 1 not in chosen  # special positions are never chosen
    assert all(labels[i] == ids[i] for i in chosen)
    assert len(chosen) / len(ids) == pytest.approx(0.15, abs=0.01)
    as_mask = sum(out[i] == 4 for i in chosen) / len(chosen)
    unchanged = sum(out[i] == ids[i] for i in chosen) / len(chosen)
    assert as_mask == pytest.approx(0.8, abs=0.03) and unchanged == pytest.approx(0.1, abs=0.03)
    assert all(out[i] == ids[i] for i in range(len(ids)) if labels[i] == -100)  # nothing else changes
    # A short piece still gets one masked token.
    _, few = mask_tokens([0, 50, 2], [True, False, True], mask_id=4, vocab=vocab, rng=np.random.default_rng(0))
    assert few == [-100, 50, -100]


def test_featurisation_is_deterministic_pieces_fit_and_dev_masks_do_not_follow_the_run_seed(tiny_tokenizer) -> None:  # noqa: ANN001
    fmt = get_format("mlm")
    task = get_task("mlm")
    rows = [{"text": " ".join(EN * 6), "language": "en"}, {"text": DE[0], "language": "de"}]
    hp = {**GLOBAL_HPARAMS, **task.defaults, "max_length": 32}
    a = fmt.featurize(rows, tiny_tokenizer, task, {**hp, "seed": 1}, train=True)
    assert a == fmt.featurize(list(rows), tiny_tokenizer, task, {**hp, "seed": 1}, train=True)
    assert a != fmt.featurize(rows, tiny_tokenizer, task, {**hp, "seed": 2}, train=True)
    assert len({f["_row"] for f in a}) == 2 and sum(f["_row"] == 0 for f in a) > 1  # the long row is cut
    assert all(len(f["input_ids"]) <= 32 and f["input_ids"][0] == 0 and f["input_ids"][-1] == 2 for f in a)
    assert all(any(x != -100 for x in f["labels"]) for f in a)
    # The unmasked pieces, put back together, are the row's tokens.
    whole = tiny_tokenizer(rows[0]["text"], add_special_tokens=False)["input_ids"]
    rebuilt = [lab if lab != -100 else x for f in a if f["_row"] == 0
               for x, lab in zip(f["input_ids"][1:-1], f["labels"][1:-1], strict=True)]
    assert rebuilt == whole
    dev = [fmt.featurize(rows, tiny_tokenizer, task, {**hp, "seed": s}, train=False) for s in (1, 2)]
    assert dev[0] == dev[1]


def test_local_text_files_load_interleaved_and_missing_ones_are_refused(tmp_path: Path) -> None:
    d = write_text(tmp_path / "wiki", {"en": EN, "de": DE})
    task, src = get_task("mlm"), DataSource(data_dir=d)
    rows = task.load("multi", "train", src)
    assert len(rows) == 4 * (len(EN) - 1) + 4 * len(DE)  # blank lines dropped
    assert [r["language"] for r in rows[:4]] == ["de", "en", "de", "en"]  # one of each language in turn
    assert {r["text"] for r in rows if r["language"] == "de"} == set(DE)
    assert [p.name for p in task.local_files("multi", "dev", src)] == ["de.dev.txt", "en.dev.txt"]
    (d / "de.dev.txt").unlink()
    with pytest.raises(XitError, match=r"\(de/dev\): missing local text file .*de.dev.txt"):
        task.local_files("multi", "dev", src)
    with pytest.raises(XitError, match="no local text file for any of its languages"):
        task.local_files("multi", "train", DataSource(data_dir=tmp_path))
    spec = {"name": "m", "intermediate": [["demo-nli", "mlm"]], "targets": ["demo-nli"],
            "data": {"mlm": {"data_dir": str(d)}}}
    with pytest.raises(XitError, match=r"field 'data.mlm': .*de.dev.txt"):
        parse_spec(spec, tmp_path / "s.yaml")


def test_all_nine_plus_mlm_is_one_spec_entry(tmp_path: Path) -> None:
    nine = ["anli-plus", "mnli", "qqp", "sst2", "squad", "squad2", "commonsenseqa", "cosmosqa", "hellaswag"]
    spec = parse_spec({"name": "m", "model": "xlm-roberta-large", "recipe": "x-stilts",
                       "intermediate": [[], nine, [*nine, "mlm"]], "targets": ["xnli"]}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    (mixed,) = [s for s in plan.by_kind("intermediate") if len(s.params.get("tasks", [])) == 10]
    mlm = mixed.params["tasks"][-1]
    assert mlm["name"] == "mlm" and mlm["hp"]["epochs"] == 3 and mlm["hp"]["max_length"] == 256
    assert mixed.label == "intermediate [" + ", ".join([*nine, "mlm"]) + "] seed 1"
    with pytest.raises(XitError, match="intermediate-only task"):
        parse_spec({"name": "m", "targets": ["mlm"]}, tmp_path / "s.yaml")


def test_mlm_trains_in_a_mixture_repeatably_from_local_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = write_text(tmp_path / "wiki", {"en": EN, "de": DE})
    tok = load_tokenizer(tiny_model_dir)
    mlm, nli = get_task("mlm"), get_task("demo-nli")
    src = DataSource(data_dir=d)

    def jobs() -> list[Job]:
        return [Job(nli, {**GLOBAL_HPARAMS, **nli.defaults, "epochs": 1.0, "batch_size": 8, "max_dev_examples": 16},
                    nli.load("en", "train")[:32], nli.load("en", "dev")),
                Job(mlm, {**GLOBAL_HPARAMS, **mlm.defaults, "epochs": 2.0, "batch_size": 4, "max_length": 32,
                          "lr": 1e-3}, mlm.load("multi", "train", src), mlm.load("multi", "dev", src))]

    records, states = [], []
    for _ in range(2):
        model = new_model(tiny_model_dir, [j.task for j in jobs()])
        records.append(train(model, tok, jobs(), seed=5, sampler={"kind": "proportional"}))
        states.append(model.state_dict())
    rec = records[0]
    assert rec == records[1] and all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert rec["tasks"] == ["demo-nli", "mlm"] and rec["steps"] == 4 + 18  # 32/8 and 2 x ceil(36/4)
    dev = rec["dev"][-1]["metrics"]["mlm"]
    assert dev["masked_tokens"] > 0 and 0 <= dev["accuracy"] <= 100
    assert rec["dev"][-1]["score"] == pytest.approx((rec["dev"][-1]["metrics"]["demo-nli"]["accuracy"]
                                                     + dev["accuracy"]) / 2)


def test_mlm_starts_from_the_pretrained_lm_head_as_jiant_does(tiny_model_dir: Path, tmp_path: Path) -> None:
    """jiant loads the masked-LM head with the encoder when a run has an MLM task (from_transformers_with_mlm)."""
    from transformers import AutoConfig, BertConfig, BertForMaskedLM, XLMRobertaForMaskedLM

    from xit.formats.mlm import LMHead, load_pretrained_lm_head
    from xit.modeling import load_model, save_model

    torch.manual_seed(0)
    xlmr = XLMRobertaForMaskedLM(AutoConfig.from_pretrained(tiny_model_dir))
    xlmr.save_pretrained(tmp_path / "xlmr")
    bert = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32))
    bert.save_pretrained(tmp_path / "bert")
    for d, (dense, norm, bias) in ((tmp_path / "xlmr", (xlmr.lm_head.dense, xlmr.lm_head.layer_norm,
                                                        xlmr.lm_head.bias)),
                                   (tmp_path / "bert", (bert.cls.predictions.transform.dense,
                                                        bert.cls.predictions.transform.LayerNorm,
                                                        bert.cls.predictions.bias))):
        head = LMHead(dense.in_features)
        assert load_pretrained_lm_head(head, str(d))
        assert torch.equal(head.transform[0].weight, dense.weight) and torch.equal(head.transform[2].bias, norm.bias)
        assert torch.equal(head.bias, bias) and head.transform[2].eps == norm.eps
    # An encoder-only checkpoint (xit-tiny's) has no LM head to take: the head stays as it was made.
    fresh = LMHead(xlmr.config.hidden_size, xlmr.config.vocab_size)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert not load_pretrained_lm_head(fresh, str(tiny_model_dir))
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    # The plan asks for it with a real model, and a trained MLM head (with its vocabulary bias) saves and loads back.
    spec = parse_spec({"name": "m", "model": str(tmp_path / "xlmr"), "intermediate": [["mlm"]],
                       "targets": ["demo-nli"], "data": {"mlm": {"data_dir": str(write_text(tmp_path / "w",
                                                                                             {"en": EN}))}}},
                      tmp_path / "s.yaml")
    (inter,) = [s for s in build_plan(spec).by_kind("intermediate") if s.params.get("tasks")]
    assert inter.params["mlm_head"] == "pretrained" and inter.runtime["model"] == str(tmp_path / "xlmr")
    model = new_model(tiny_model_dir, [get_task("mlm")])
    assert model.heads["mlm"].bias.numel() == len(load_tokenizer(tiny_model_dir))
    with torch.no_grad():
        model.heads["mlm"].bias.fill_(0.5)
    save_model(model, load_tokenizer(tiny_model_dir), tmp_path / "saved")
    loaded, _ = load_model(tmp_path / "saved", [get_task("mlm")])
    assert torch.equal(loaded.heads["mlm"].bias, model.heads["mlm"].bias)
