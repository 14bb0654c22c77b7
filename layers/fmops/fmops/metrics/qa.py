"""SQuAD v1.1 exact match and token F1, as the official ``evaluate-v1.1.py`` computes them.

Answers are normalised by lower-casing, removing ASCII punctuation (``string.punctuation``), removing the
articles a/an/the (``\\b(a|an|the)\\b``) and collapsing whitespace. A prediction scores the maximum over its gold
answers. Per-example scores are 0/1 (exact match) and 0..1 (F1); :func:`squad_evaluate` reports
``100 * sum / count`` like the official script. As in v1.1 (unlike v2.0), an empty normalised prediction gets
F1 0 even against an empty normalised answer (while its exact match is 1).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import TypedDict

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


class SquadScores(TypedDict):
    exact_match: float
    f1: float


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def _f1_tokens(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _golds(gold_answers: Sequence[str]) -> Sequence[str]:
    if isinstance(gold_answers, str) or not gold_answers:
        raise ValueError("gold_answers must be a non-empty list of answers")
    return gold_answers


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals one normalised gold answer, else 0.0."""
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(g) for g in _golds(gold_answers)))


def token_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token-level F1 (0..1) of the prediction against the gold answers."""
    tokens = normalize_answer(prediction).split()
    return max(_f1_tokens(tokens, normalize_answer(g).split()) for g in _golds(gold_answers))


def squad_evaluate(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> SquadScores:
    """Corpus exact match and F1 on the 0-100 scale of the official script."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no samples")
    em = f1 = 0.0
    for prediction, golds in zip(predictions, references, strict=True):
        em += exact_match(prediction, golds)
        f1 += token_f1(prediction, golds)
    total = len(predictions)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}
