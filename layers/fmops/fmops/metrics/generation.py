"""Perplexity from per-token log-likelihoods.

Corpus perplexity is ``exp(mean token NLL)`` over all tokens of all examples (natural log): examples weigh by
their token counts, it is not the mean of per-example perplexities. Log-probabilities must be finite and <= 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_EXP = math.log(2.0**1023)  # above this math.exp overflows


def _checked(token_logprobs: Sequence[Sequence[float]]) -> list[Sequence[float]]:
    examples = list(token_logprobs)
    if not examples:
        raise ValueError("no samples")
    for number, example in enumerate(examples, start=1):
        for value in example:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"example {number}: log-probabilities must be numbers, not {type(value).__name__}")
            if not math.isfinite(value) or value > 0:
                raise ValueError(f"example {number}: log-probability {value!r} is not finite and <= 0")
    return examples


def mean_token_nll(token_logprobs: Sequence[Sequence[float]]) -> float:
    """Mean negative log-likelihood per token over every token of every example (nats).

    Raises:
        ValueError: no example, no token at all, or a value that is not a finite number <= 0.
    """
    examples = _checked(token_logprobs)
    count = sum(len(e) for e in examples)
    if not count:
        raise ValueError("no tokens")
    return -math.fsum(v for e in examples for v in e) / count


def nll_to_perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)``; ``inf`` past the float range."""
    return math.exp(mean_nll) if mean_nll <= MAX_EXP else math.inf


def perplexity(token_logprobs: Sequence[Sequence[float]]) -> float:
    """Corpus perplexity: ``exp`` of the mean token NLL over all tokens of all examples."""
    return nll_to_perplexity(mean_token_nll(token_logprobs))
