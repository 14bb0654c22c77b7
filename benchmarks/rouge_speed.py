"""ROUGE throughput: fmops.metrics.rouge against Google's rouge-score on the same pairs, in the same run.

    .venv/bin/python benchmarks/rouge_speed.py [--pairs 10000] [--seed 0] [--no-write]

Generates seeded English-like texts (~60 tokens, one sentence per line, inflected words so that stemming
matters); predictions are perturbed copies of the references (words swapped, dropped, inserted; sentences
reordered). Scores ROUGE-1/2/L/Lsum with the Porter stemmer with both implementations (ours starts with an empty
stem cache), checks that every precision/recall/F-measure is identical (prints the largest absolute difference)
and prints pairs/s and the speed ratio. Writes "## ROUGE" in RESULTS.md unless --no-write. Target: >= 5x.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "fmops"), str(ROOT / "benchmarks")]

STEMS = (
    "report model train evaluat deploy customer invoice refund support ticket billing account payment price "
    "market company govern nation research scienc student teach learn comput network system process data "
    "feature improv increas decreas announc develop product servic manag employ project result measur test "
    "predict generat summar translat answer question document paragraph sentenc word token"
).split()
SUFFIXES = ("", "", "", "s", "ed", "ing", "ment", "ation", "er", "ers", "ly", "ness", "ive", "al")
FUNCTION_WORDS = (
    "the a an of to in and for on with by at from that this is was were be has have it its their as not "
    "but or which who will would can could new more most after before over under about"
).split()
PUNCTUATION = (",", ",", ";", ":", " -", "'s", " (2024)", " 3.5%", " $12")


def _word(rng: random.Random) -> str:
    if rng.random() < 0.45:
        return rng.choice(FUNCTION_WORDS)
    stem = rng.choice(STEMS)
    word = stem + rng.choice(SUFFIXES)
    return word.capitalize() if rng.random() < 0.05 else word


def _sentence(rng: random.Random, length: int) -> list[str]:
    words = [_word(rng) for _ in range(length)]
    for i in range(len(words) - 1):
        if rng.random() < 0.06:
            words[i] += rng.choice(PUNCTUATION)
    words[0] = words[0].capitalize()
    words[-1] += "."
    return words


def make_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """``(predictions, references)``: ~60-token texts, one sentence per line."""
    rng = random.Random(seed)
    predictions: list[str] = []
    references: list[str] = []
    for _ in range(count):
        total = rng.randint(50, 70)
        sentences: list[list[str]] = []
        while total > 0:
            length = min(total, rng.randint(8, 22))
            sentences.append(_sentence(rng, length))
            total -= length
        references.append("\n".join(" ".join(s) for s in sentences))
        predicted: list[list[str]] = []
        for sentence in sentences:
            if rng.random() < 0.1:
                continue  # a dropped sentence
            words: list[str] = []
            for word in sentence:
                r = rng.random()
                if r < 0.15:
                    words.append(_word(rng))  # substituted
                elif r < 0.22:
                    continue  # dropped
                elif r < 0.28:
                    words.extend((word, _word(rng)))  # inserted
                else:
                    words.append(word)
            predicted.append(words or [_word(rng)])
        if len(predicted) > 1 and rng.random() < 0.3:
            rng.shuffle(predicted)
        predictions.append("\n".join(" ".join(s) for s in predicted))
    return predictions, references


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import nltk
    from rouge_score import rouge_scorer

    from fmops.metrics import rouge
    from fmops.metrics.rouge import ROUGE_TYPES, rouge_scores

    predictions, references = make_pairs(args.pairs, args.seed)
    tokens = sum(len(rouge.tokenize(r)) for r in references) / len(references)
    print(f"{args.pairs} pairs, {tokens:.1f} reference tokens on average")

    rouge._stem_token.cache_clear()
    start = time.perf_counter()
    ours = rouge_scores(predictions, references, use_stemmer=True)
    ours_s = time.perf_counter() - start

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    start = time.perf_counter()
    theirs = [scorer.score(r, p) for p, r in zip(predictions, references, strict=True)]
    theirs_s = time.perf_counter() - start

    max_diff = max(
        abs(a - b)
        for mine, ref in zip(ours, theirs, strict=True)
        for t in ROUGE_TYPES
        for a, b in zip(mine[t], ref[t], strict=True)
    )
    ratio = theirs_s / ours_s
    print(f"rouge-score {rouge_score_version()}: {theirs_s:.2f} s, {args.pairs / theirs_s:,.0f} pairs/s")
    print(f"fmops.metrics.rouge: {ours_s:.2f} s, {args.pairs / ours_s:,.0f} pairs/s")
    print(f"ratio {ratio:.1f}x (target >= 5x); max abs diff over every P/R/F: {max_diff:.3g}")
    if max_diff > 1e-9:
        raise SystemExit("the scores differ")

    body = (
        f"`python benchmarks/rouge_speed.py --pairs {args.pairs}`: {args.pairs:,} seeded synthetic pairs "
        f"({tokens:.0f} reference tokens on average, one sentence per line), ROUGE-1/2/L/Lsum with the Porter "
        f"stemmer, P/R/F; rouge-score {rouge_score_version()} (nltk {nltk.__version__}) in the same process; "
        f"our stem cache starts empty. CPython {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {date.today().isoformat()} (shared machine: timings are noisy).\n"
        f"Target: >= 5x rouge-score. Largest absolute difference over every score: {max_diff:.3g}.\n\n"
        "| implementation | seconds | pairs/s | ratio |\n"
        "|---|---:|---:|---:|\n"
        f"| baseline: `rouge_score.rouge_scorer.RougeScorer` | {theirs_s:.2f} | {args.pairs / theirs_s:,.0f} | 1.0 |\n"
        f"| `fmops.metrics.rouge_scores` | {ours_s:.2f} | {args.pairs / ours_s:,.0f} | {ratio:.1f} |\n"
    )
    if not args.no_write:
        from _results import write_section

        write_section("ROUGE", body)


def rouge_score_version() -> str:
    from importlib.metadata import version

    return version("rouge-score")


if __name__ == "__main__":
    main()
