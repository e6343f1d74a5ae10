"""Evaluation metrics for the XTREME task families, written from their published definitions.

- `squad`: SQuAD v1.1 exact match / token F1 (XQuAD, MLQA, TyDiQA-GoldP).
- `classification`: accuracy (XNLI, PAWS-X).
- `tagging`: seqeval span F1 and token accuracy (PAN-X NER, UD-POS).
- `retrieval`: Tatoeba accuracy and BUCC margin-based bitext mining.
"""

from xit.metrics.classification import accuracy
from xit.metrics.retrieval import (
    best_threshold,
    bucc_f1,
    l2_normalize,
    mine_bitext,
    ratio_margin_scores,
    tatoeba_accuracy,
)
from xit.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_scores
from xit.metrics.tagging import span_f1, token_accuracy

__all__ = [
    "accuracy",
    "best_threshold",
    "bucc_f1",
    "exact_match_score",
    "f1_score",
    "l2_normalize",
    "mine_bitext",
    "normalize_answer",
    "ratio_margin_scores",
    "span_f1",
    "squad_scores",
    "tatoeba_accuracy",
    "token_accuracy",
]
