"""MLQA evaluation, following the official ``mlqa_evaluation_v1.py`` (facebookresearch/MLQA).

Differences from SQuAD v1.1 (`xit.metrics.squad`), all per answer language:

* punctuation is every Unicode character whose category starts with "P", plus ``string.punctuation``;
* articles removed (as whole words, after lower-casing and punctuation removal):
  en a/an/the; es un/una/unos/unas/el/la/los/las; de ein/eine/einen/einem/eines/einer/der/die/das/den/dem/des;
  vi của/là/cái/chiếc/những; hi and zh none; ar: the official pattern ``\\sال^|ال``, which in effect replaces
  *every* occurrence of "ال" (not only the word-initial article) by a space;
* tokens: whitespace split for en/es/hi/vi/de/ar; zh uses mixed segmentation (each CJK character in
  U+4E00..U+9FA5 and each punctuation character is a token, runs of other characters are split on whitespace).

EM compares normalised strings; F1 is bag-of-tokens overlap; a question takes its best score over gold answers;
scores are averaged over every reference question (a missing prediction scores 0).
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

from xit.metrics.squad import corpus_scores

PUNCT = frozenset(
    {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")} | set(string.punctuation)
)
WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MIXED_SEGMENTATION_LANGS = ("zh",)
LANGUAGES = WHITESPACE_LANGS + MIXED_SEGMENTATION_LANGS

_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
    "zh": None,
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _check(lang: str) -> None:
    if lang not in _ARTICLES:
        raise ValueError(f"MLQA scoring: unknown language {lang!r} (known: {', '.join(LANGUAGES)})")


def mixed_segmentation(text: str) -> list[str]:
    """Each CJK character and each punctuation character is one token; other runs split on whitespace."""
    out: list[str] = []
    run = ""
    for ch in text:
        if _CJK.match(ch) or ch in PUNCT:
            out.extend(run.split())
            run = ""
            out.append(ch)
        else:
            run += ch
    out.extend(run.split())
    return out


def normalize_answer(s: str, lang: str) -> str:
    """Lower-case, drop punctuation, drop the language's articles, re-tokenise and join on single spaces."""
    _check(lang)
    text = "".join(ch for ch in s.lower() if ch not in PUNCT)
    articles = _ARTICLES[lang]
    if articles is not None:
        text = articles.sub(" ", text)
    tokens = mixed_segmentation(text) if lang in MIXED_SEGMENTATION_LANGS else text.split()
    return " ".join(t for t in tokens if t.strip())


def exact_match_score(prediction: str, ground_truth: str, lang: str) -> bool:
    return normalize_answer(prediction, lang) == normalize_answer(ground_truth, lang)


def f1_score(prediction: str, ground_truth: str, lang: str) -> float:
    """Token-level F1 (0..1) between the normalised prediction and gold answer."""
    pred_tokens = normalize_answer(prediction, lang).split()
    gold_tokens = normalize_answer(ground_truth, lang).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def mlqa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], lang: str) -> dict:
    """Corpus-level MLQA scores in percent for one answer language.

    Same contract as `xit.metrics.squad.squad_scores`: returns ``{"em", "f1", "em_f1", "n"}`` (0..100,
    averaged over all questions in ``references``); raises ValueError on empty references, a question
    without gold answers, or an unknown language.
    """
    _check(lang)
    return corpus_scores(predictions, references, lambda p, g: exact_match_score(p, g, lang),
                         lambda p, g: f1_score(p, g, lang), "mlqa_scores")
