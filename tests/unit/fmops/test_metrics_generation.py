"""fmops.metrics.generation: corpus perplexity = exp(mean token NLL over all tokens)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from fmops.metrics import mean_token_nll, perplexity


def test_matches_numpy_on_random_examples() -> None:
    rng = random.Random(0)
    for _ in range(50):
        examples = [[math.log(rng.uniform(1e-6, 1.0)) for _ in range(rng.randint(1, 60))] for _ in range(20)]
        flat = np.concatenate([np.asarray(e) for e in examples])
        assert perplexity(examples) == pytest.approx(float(np.exp(-flat.mean())), rel=1e-12)


def test_examples_weigh_by_their_tokens() -> None:
    # Not the mean of per-example perplexities: 3 tokens at p=1/2 and 1 token at p=1/8 -> exp(6 ln 2 / 4).
    examples = [[math.log(0.5)] * 3, [math.log(0.125)]]
    assert mean_token_nll(examples) == pytest.approx(6 * math.log(2) / 4)
    assert perplexity(examples) == pytest.approx(2**1.5)


def test_certain_tokens_and_uniform_guessing() -> None:
    assert perplexity([[0.0, 0.0], [0]]) == 1.0
    assert perplexity([[math.log(1 / 50)] * 7]) == pytest.approx(50.0)
    assert perplexity([[-1e6]]) == math.inf


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([], "no samples"),
        ([[]], "no tokens"),
        ([[-0.1, 0.5]], "not finite and <= 0"),
        ([[-0.1, math.nan]], "not finite"),
        ([[-math.inf]], "not finite"),
        ([[-0.1, "x"]], "numbers"),
        ([[True]], "numbers"),
    ],
)
def test_bad_input_is_refused(examples: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        perplexity(examples)
