"""Sentence retrieval: layer choice, mean-pooled embeddings of the tiny model, Tatoeba and BUCC scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xit.encoding import default_layer, embed
from xit.modeling import load_encoder
from xit.retrieval import bucc_candidates, bucc_scores, tatoeba_scores

CPU = torch.device("cpu")

# --------------------------------------------------------------------------- default_layer


@pytest.mark.parametrize(
    ("n_layers", "expected"),
    [
        (24, 14),  # XTREME's layer 14 of 24 for XLM-R Large
        (12, 7),  # 12 * 14/24 = 7 (XLM-R Base, mBERT)
        (4, 2),  # 4 * 14/24 = 2.33 -> 2 (the tiny model)
        (2, 1),  # 1.17 -> 1
        (1, 1),  # 0.58 -> 1: never the embedding layer (index 0)
    ],
)
def test_default_layer(n_layers: int, expected: int) -> None:
    assert default_layer(n_layers) == expected


# --------------------------------------------------------------------------- embed


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model_dir: Path) -> Any:
    return load_encoder(tiny_model_dir)


SHORT = "Ana painted the green house in Porto ."
LONG = " ".join(["Ben Lima carried the heavy golden basket near Oslo and then sold it in Lyon ."] * 4)


def run_embed(encoder: Any, tokenizer: Any, sentences: list[str], layer: int | None = 2,
              batch_size: int = 8, **kw: Any) -> np.ndarray:
    return embed(encoder, tokenizer, sentences, layer=layer, max_length=128, batch_size=batch_size,
                 device=CPU, **kw)


def test_embed_one_row_per_sentence(tiny_encoder: Any, tiny_tokenizer: Any) -> None:
    sentences = [SHORT, LONG, "Oslo .", "Carla found a candle .", SHORT]
    seen: list[int] = []
    out = run_embed(tiny_encoder, tiny_tokenizer, sentences, batch_size=2, progress=seen.append)
    assert out.shape == (5, tiny_encoder.config.hidden_size)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert seen == [2, 2, 1]
    np.testing.assert_allclose(out[0], out[4], atol=1e-5)  # same sentence, other batch


def test_embed_mean_pooling_ignores_padding(tiny_encoder: Any, tiny_tokenizer: Any) -> None:
    n_short = len(tiny_tokenizer(SHORT)["input_ids"])
    n_long = len(tiny_tokenizer(LONG)["input_ids"])
    assert n_long > 4 * n_short  # the short sentence is mostly padding in the batch
    for layer in (0, 2, 4):
        alone = run_embed(tiny_encoder, tiny_tokenizer, [SHORT], layer=layer)
        batched = run_embed(tiny_encoder, tiny_tokenizer, [LONG, SHORT], layer=layer)
        np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)


def test_embed_is_mean_of_chosen_layer(tiny_encoder: Any, tiny_tokenizer: Any) -> None:
    enc = tiny_tokenizer([SHORT], return_tensors="pt")
    with torch.no_grad():
        states = tiny_encoder(**enc, output_hidden_states=True).hidden_states
    assert len(states) == 5  # embeddings + 4 layers
    for layer in (0, 1, 3):
        out = run_embed(tiny_encoder, tiny_tokenizer, [SHORT], layer=layer)
        np.testing.assert_allclose(out[0], states[layer][0].mean(0).numpy(), atol=1e-5)


def test_embed_layer_matters(tiny_encoder: Any, tiny_tokenizer: Any) -> None:
    sentences = [SHORT, LONG]
    l0 = run_embed(tiny_encoder, tiny_tokenizer, sentences, layer=0)
    l2 = run_embed(tiny_encoder, tiny_tokenizer, sentences, layer=2)
    assert not np.allclose(l0, l2, atol=1e-3)
    default = run_embed(tiny_encoder, tiny_tokenizer, sentences, layer=None)
    np.testing.assert_allclose(default, l2, atol=1e-6)  # default_layer(4) == 2


# --------------------------------------------------------------------------- Tatoeba


def test_tatoeba_scores_both_directions() -> None:
    # English targets are the basis vectors, so cos(S_i, T_j) = S_i[j] / |S_i|.
    tgt = np.eye(4)
    src = np.array([
        [1.2, 1.0, 1.0, 0.0],  # /1.855 -> [.647, .539, .539, 0]: nearest T0, right
        [0.0, 1.0, 0.0, 0.0],  # nearest T1, right
        [0.68, 0.0, 0.72, 0.0],  # /.990 -> [.687, 0, .727, 0]: nearest T2, right
        [0.0, 0.0, 1.0, 0.8],  # /1.281 -> [0, 0, .781, .625]: nearest T2, wrong
    ])
    # xx->en (rows): 3 of 4 right.
    # en->xx (columns of the normalised rows): T0 -> S2 (.687 > .647) wrong, T1 -> S1 right,
    # T2 -> S3 (.781 > .727 > .539) wrong, T3 -> S3 right: 2 of 4.
    scores = tatoeba_scores(src, tgt)
    assert scores["accuracy_xx_en"] == pytest.approx(75.0)
    assert scores["accuracy_en_xx"] == pytest.approx(50.0)
    assert scores["accuracy"] == scores["accuracy_en_xx"]  # XTREME's headline direction
    assert tatoeba_scores(tgt, tgt) == {"accuracy": 100.0, "accuracy_xx_en": 100.0, "accuracy_en_xx": 100.0}


def char_ngram_embeddings(sentences: list[str], dim: int = 512) -> np.ndarray:
    """A deterministic bag of hashed character trigrams: cheap embeddings that share names and numbers."""
    import zlib

    out = np.zeros((len(sentences), dim), dtype=np.float32)
    for i, s in enumerate(sentences):
        t = f"  {s.lower()}  "
        for j in range(len(t) - 2):
            out[i, zlib.crc32(t[j:j + 3].encode()) % dim] += 1
    return out


def test_tatoeba_headline_is_xtremes_direction_on_real_sample(shared_data: Path) -> None:
    # XTREME's third_party/evaluate_retrieval.py (task tatoeba) calls utils_retrieve.similarity_search(x, y) with
    # x = the non-English embeddings (indexed: faiss IndexFlatL2 over L2-normalised rows) and y = the English ones
    # (the queries): prediction[i] = the xx sentence nearest to English sentence i, right when it is i.
    from xit.tasks.loading import parallel_rows

    row = parallel_rows(shared_data / "tatoeba/tatoeba.deu-eng.deu", shared_data / "tatoeba/tatoeba.deu-eng.eng")[0]
    x, y = char_ngram_embeddings(row["source"]), char_ngram_embeddings(row["target"])
    xn, yn = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (x, y))
    # squared L2 distance, query (English) x index (German): |y|^2 + |x|^2 - 2 y.x
    l2 = (yn ** 2).sum(1)[:, None] + (xn ** 2).sum(1)[None, :] - 2 * yn @ xn.T
    xtreme = 100.0 * float(np.mean(np.argmin(l2, axis=1) == np.arange(len(y))))
    scores = tatoeba_scores(x, y)
    assert scores["accuracy_xx_en"] != pytest.approx(xtreme)  # the sample tells the two directions apart
    assert scores["accuracy"] == pytest.approx(xtreme)
    assert scores["accuracy_en_xx"] == pytest.approx(xtreme)


# --------------------------------------------------------------------------- BUCC

DIM = 16
SHARED = DIM - 1  # a component every sentence has: cos between unrelated sentences = .25/1.25 = .2


def vec(**weights: float) -> np.ndarray:
    """0.5 on the shared dimension plus the given weights on dimensions d0..d14."""
    v = np.zeros(DIM, dtype=np.float32)
    v[SHARED] = 0.5
    for k, w in weights.items():
        v[int(k[1:])] = w
    return v


def bucc_split(split: str, src: list[np.ndarray], tgt: list[np.ndarray], gold: list[tuple[int, int]],
               tgt_order: list[int]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Embeddings and a BUCC row; targets are stored in `tgt_order`, so gold ids are not aligned."""
    src_ids = [f"xx-{split}-{i:06d}" for i in range(len(src))]
    tgt_ids = [f"en-{split}-{i:06d}" for i in range(len(tgt))]
    position = {t: p for p, t in enumerate(tgt_order)}
    row = {
        "source_ids": src_ids,
        "source": [f"s{i}" for i in range(len(src))],
        "target_ids": tgt_ids,
        "target": [f"t{i}" for i in range(len(tgt))],
        "gold": sorted([src_ids[s], tgt_ids[position[t]]] for s, t in gold),
    }
    return np.stack(src), np.stack([tgt[t] for t in tgt_order]), row


def test_bucc_scores_threshold_tuned_on_dev() -> None:
    # Ratio margin with k = 4. An identical pair (cos 1) whose other neighbours are unrelated (cos .2):
    # mean of the 4 nearest = (1 + 3 * .2) / 4 = .4 on both sides -> margin 1 / .4 = 2.5.
    # A pair at cos (.6 + .25) / 1.25 = .68: mean of 4 nearest (.68 + .6) / 4 = .32 -> .68 / .32 = 2.125.
    # An unrelated pair: .2 / .2 = 1 (or less next to a strong pair).
    dev = bucc_split(
        "dev",
        src=[vec(d0=1), vec(d1=1), vec(d2=1), vec(d3=1), vec(d5=1), vec(d6=1)],
        tgt=[vec(d0=1), vec(d1=1), vec(d2=1), vec(d3=0.6, d4=0.8), vec(d7=1), vec(d8=1)],
        gold=[(0, 0), (1, 1), (2, 2)],  # (3, 3) is the hard distractor at 2.125; 4, 5 unpaired
        tgt_order=[5, 2, 0, 4, 1, 3],
    )
    # dev: the 3 gold pairs at 2.5 give F1 100; adding the distractor (2.125) drops precision to 3/4,
    # so the optimum keeps the 2.5 group; XTREME's threshold is the midpoint with the next score:
    # (2.5 + 2.125) / 2 = 2.3125.
    test = bucc_split(
        "test",
        src=[vec(d0=1), vec(d1=1), vec(d2=1), vec(d3=1), vec(d4=1), vec(d5=1), vec(d6=1), vec(d9=1)],
        tgt=[vec(d0=1), vec(d1=1), vec(d2=1), vec(d3=1), vec(d4=0.6, d10=0.8), vec(d5=1), vec(d6=1),
             vec(d11=1)],
        # 4 strong gold pairs (2.5) and a weak one (2.125, below the dev threshold); (5, 5) and (6, 6)
        # are identical but not gold (2.5, above it).
        gold=[(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)],
        tgt_order=[7, 6, 5, 4, 3, 2, 1, 0],
    )
    scores = bucc_scores(dev, test, k=4)
    assert scores["threshold"] == pytest.approx(2.3125, rel=1e-5)
    assert scores["dev_f1"] == pytest.approx(100.0)
    # test at 2.3125: predicted 4 gold + 2 non-gold = 6, correct 4, gold 5:
    # P = 4/6, R = 4/5, F1 = 2 * (2/3) * (4/5) / (2/3 + 4/5) = 8/11.
    # (Tuning on test instead would keep the weak pair too: P = 5/7, R = 1, F1 = 5/6.)
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(80.0)
    assert scores["f1"] == pytest.approx(800 / 11)


def test_bucc_scores_perfect_when_only_gold_is_close() -> None:
    src = [vec(d0=1), vec(d1=1), vec(d2=1), vec(d3=1)]
    tgt = [vec(d0=1), vec(d1=1), vec(d2=1), vec(d4=1)]
    dev = bucc_split("dev", src, tgt, gold=[(0, 0), (1, 1), (2, 2)], tgt_order=[3, 1, 2, 0])
    test = bucc_split("test", src, tgt, gold=[(0, 0), (1, 1), (2, 2)], tgt_order=[2, 0, 3, 1])
    scores = bucc_scores(dev, test)
    assert scores["dev_f1"] == pytest.approx(100.0)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((100.0, 100.0, 100.0))


def dedup_row() -> tuple[np.ndarray, np.ndarray, dict]:
    """German line 2 repeats line 0's text (and embedding, as any encoder gives it); its gold pair is line 0's."""
    src = np.stack([vec(d0=1), vec(d1=1), vec(d0=1), vec(d2=1)])
    tgt = np.stack([vec(d0=1), vec(d1=1), vec(d2=1)])
    row = {"source_ids": ["de-1", "de-2", "de-3", "de-4"], "source": ["Hallo.", "Ja.", "Hallo.", "Nein."],
           "target_ids": ["en-1", "en-2", "en-3"], "target": ["Hello.", "Yes.", "No."],
           "gold": [["de-1", "en-1"], ["de-2", "en-2"], ["de-4", "en-3"]]}
    return src, tgt, row


def test_bucc_never_predicts_a_pair_on_a_duplicated_text() -> None:
    # XTREME's utils_retrieve: mine_bitext over the distinct texts (text_load_unify), read_sent2id drops texts
    # that occur more than once. Distinct texts: 3 x 3, k clipped to 3; a matched pair has cos 1, others .2:
    # mean of 3 NN = 1.4 / 3 on both sides -> margin 1 / (1.4 / 3) = 15 / 7. "Hallo." is never predicted.
    src, tgt, row = dedup_row()
    assert bucc_candidates(src, tgt, row, k=4) == [
        (1, 1, pytest.approx(15 / 7, rel=1e-5)), (3, 2, pytest.approx(15 / 7, rel=1e-5))]
    scores = bucc_scores((src, tgt, row), (src, tgt, row), k=4)
    # Mining every line would predict (de-1, en-1) too (F1 100); XTREME: P 2/2, R 2/3 -> F1 80.
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((100.0, 200 / 3, 80.0))
    assert scores["dev_f1"] == pytest.approx(80.0)


def test_bucc_duplicates_are_found_on_stripped_text_and_on_both_sides() -> None:
    src, tgt, row = dedup_row()
    row = {**row, "source": ["Hallo.", "Ja.", "Tschüss.", "Nein."], "target": ["Hello.", "Yes. ", " Yes."]}
    src[2] = vec(d3=1)
    # "Yes. " and " Yes." are two texts to mine but one to read back (read_sent2id strips): both dropped.
    assert [(s, t) for s, t, _ in bucc_candidates(src, tgt, row)] == [(0, 0)]
