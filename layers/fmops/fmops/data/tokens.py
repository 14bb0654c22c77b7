"""How fmops counts tokens: a documented estimate in Lambda, exact counts where a real tokenizer ships.

Why an estimate. The tokenizers of the Bedrock base models do not ship for offline use: Amazon Titan, Amazon Nova
and Anthropic Claude publish none, and the Llama ones are large, gated downloads that do not belong in a Lambda
layer. Bedrock's CountTokens API counts exactly, but it is a network call per record and is offered for some
models only, so it does not fit a streaming, line-by-line validation in Lambda either. The Bedrock data
requirements themselves state the character quota per record as "token quota x 6 (estimated)" and advise
"approximately 6 characters per token to estimate the number of tokens", so the count here is that documented
estimate:

    estimate_tokens(text, chars_per_token) = ceil(len(text) / chars_per_token)

with the per-model ``chars_per_token`` of ``fmops.data.limits`` (6 where AWS documents it, a more cautious 4
where it does not). ``len`` counts Unicode code points. Rounding up keeps every non-empty text at one token or
more and never under-counts a fraction (a quotient within float error of a whole number counts as that number:
``6 / 0.6`` is 10, not 11). It is an estimate, not the model's count: messages built from it say
"about N tokens" (``token_phrase``), and a record near a limit may still be refused (or accepted) by Bedrock.

Exact counts. ``fmops_local.tokenizer_counter.HuggingFaceTokenizerCounter`` loads a ``tokenizer.json`` with the
``tokenizers`` package (command line only, not in the Lambda layer), for models whose tokenizer ships, such as
the base models of our own SageMaker container.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fmops.data.limits import ModelLimits

# How close to a whole number a quotient must be to count as one (``6 / 0.6`` is 10.000000000000002 in floats).
_WHOLE_TOLERANCE = 1e-9


def estimate_tokens(text: str, chars_per_token: float) -> int:
    """``ceil(len(text) / chars_per_token)``: the documented estimate (see the module docstring).

    Raises:
        ValueError: ``chars_per_token`` is not a finite number > 0.
    """
    if isinstance(chars_per_token, bool) or not math.isfinite(chars_per_token) or chars_per_token <= 0:
        raise ValueError(f"chars_per_token must be a finite number > 0, got {chars_per_token!r}")
    quotient = len(text) / chars_per_token
    nearest = round(quotient)
    if abs(quotient - nearest) <= _WHOLE_TOLERANCE * max(1.0, quotient):
        return int(nearest)
    return math.ceil(quotient)


def token_phrase(count: int, exact: bool) -> str:
    """``about 12 tokens`` for an estimate, ``12 tokens`` for an exact count (``1 token``)."""
    noun = "token" if count == 1 else "tokens"
    return f"{count:,} {noun}" if exact else f"about {count:,} {noun}"


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a text; ``exact`` says whether the count is the model's own or an estimate."""

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class EstimateCounter:
    """The documented estimate, ``ceil(len(text) / chars_per_token)``; standard library only."""

    chars_per_token: float

    def __post_init__(self) -> None:
        estimate_tokens("", self.chars_per_token)  # validates chars_per_token

    @property
    def exact(self) -> bool:
        return False

    def count(self, text: str) -> int:
        return estimate_tokens(text, self.chars_per_token)

    def describe(self, text: str) -> str:
        """``about N tokens``."""
        return token_phrase(self.count(text), exact=False)

    @classmethod
    def for_limits(cls, limits: ModelLimits) -> EstimateCounter:
        """The estimate with the ratio of a model's row."""
        return cls(limits.chars_per_token)
