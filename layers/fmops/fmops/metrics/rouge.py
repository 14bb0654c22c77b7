"""ROUGE-N, ROUGE-L and ROUGE-Lsum, score for score identical to Google's ``rouge-score`` 0.1.2.

``rouge_score(prediction, reference)`` gives what ``RougeScorer(types, use_stemmer=...).score(reference,
prediction)`` gives (note the argument order: rouge-score takes the target first). Same pipeline:

- tokens: ``text.lower()``, every run of characters outside ``[a-z0-9]`` is a separator (so accented and
  non-Latin letters separate tokens, and "don't" is "don" "t");
- stemming (``use_stemmer``): only tokens longer than 3 characters, with the Porter stemmer of NLTK in its default
  ``NLTK_EXTENSIONS`` mode (:func:`porter_stem` is a port of ``nltk.stem.porter.PorterStemmer.stem``, memoised);
- ROUGE-N: clipped n-gram overlap; precision = overlap / max(predicted n-grams, 1), recall likewise;
- ROUGE-L: longest common subsequence of the token lists; 0 when either is empty;
- ROUGE-Lsum: sentences are the non-empty ``"\\n"``-separated lines; for each reference sentence the union of
  one LCS with each predicted sentence (the LCS that rouge-score's table backtracking picks, ties included), hits
  clipped by the token counts (ROUGE-1.5.5's rule);
- F-measure: ``2 P R / (P + R)``, 0 when ``P + R`` is 0.

Faster than rouge-score: tokens are stemmed once per distinct word (memoised), n-grams are counted with
``Counter`` and the LCS is computed bit-parallel on Python integers (Hyyrö 2004, O(m * ceil(n / word)) word
operations instead of an m x n table); the LCS that Lsum needs is read back from the bit rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

_TOKEN_RE = re.compile(r"[a-z0-9]+")
_ROUGE_N_RE = re.compile(r"rouge[0-9]$")


class RougeScore(NamedTuple):
    precision: float
    recall: float
    fmeasure: float


# ------------------------------------------------------------------------------------------- Porter stemmer
# A port of nltk.stem.porter.PorterStemmer (mode NLTK_EXTENSIONS, nltk 3.x), rule for rule and in the same order:
# the comments name NLTK's methods. Kept literal rather than clever: it runs once per distinct word.

_VOWELS = frozenset("aeiou")
_IRREGULAR = {
    "sky": ("sky", "skies"),
    "die": ("dying",),
    "lie": ("lying",),
    "tie": ("tying",),
    "news": ("news",),
    "inning": ("innings", "inning"),
    "outing": ("outings", "outing"),
    "canning": ("cannings", "canning"),
    "howe": ("howe",),
    "proceed": ("proceed",),
    "exceed": ("exceed",),
    "succeed": ("succeed",),
}
_POOL = {form: root for root, forms in _IRREGULAR.items() for form in forms}

_Condition = Callable[[str], bool] | None
_Rule = tuple[str, str, _Condition]


def _is_consonant(word: str, i: int) -> bool:
    """A letter other than a vowel, and other than a 'y' preceded by a consonant."""
    if word[i] in _VOWELS:
        return False
    if word[i] == "y":
        negate = False
        while i > 0 and word[i] == "y":
            negate = not negate
            i -= 1
        return (word[i] not in _VOWELS) != negate
    return True


def _consonant_flags(word: str) -> list[bool]:
    flags: list[bool] = []
    for i, ch in enumerate(word):
        if ch in _VOWELS:
            flags.append(False)
        elif ch == "y":
            flags.append(True if i == 0 else not flags[i - 1])
        else:
            flags.append(True)
    return flags


def _measure(stem: str) -> int:
    """m in [C](VC){m}[V]: the number of vowel-to-consonant transitions."""
    flags = _consonant_flags(stem)
    return sum(1 for i in range(1, len(flags)) if flags[i] and not flags[i - 1])


def _has_positive_measure(stem: str) -> bool:
    return _measure(stem) > 0


def _contains_vowel(stem: str) -> bool:
    return not all(_consonant_flags(stem))


def _ends_double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _is_consonant(word, len(word) - 1)


def _ends_cvc(word: str) -> bool:
    return (
        len(word) >= 3
        and _is_consonant(word, len(word) - 3)
        and not _is_consonant(word, len(word) - 2)
        and _is_consonant(word, len(word) - 1)
        and word[-1] not in ("w", "x", "y")
    ) or (len(word) == 2 and not _is_consonant(word, 0) and _is_consonant(word, 1))


def _strip(word: str, suffix: str) -> str:
    return word[: -len(suffix)] if suffix else word


def _apply_rule_list(word: str, rules: Sequence[_Rule]) -> str:
    """The first rule whose suffix matches decides: its replacement if its condition holds, else no change."""
    for suffix, replacement, condition in rules:
        if suffix == "*d" and _ends_double_consonant(word):
            stem = word[:-2]
            if condition is None or condition(stem):
                return stem + replacement
            return word
        if word.endswith(suffix):
            stem = _strip(word, suffix)
            if condition is None or condition(stem):
                return stem + replacement
            return word
    return word


_STEP1A: tuple[_Rule, ...] = (("sses", "ss", None), ("ies", "i", None), ("ss", "ss", None), ("s", "", None))


def _step1a(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        return _strip(word, "ies") + "ie"
    return _apply_rule_list(word, _STEP1A)


def _step1b(word: str) -> str:
    if word.endswith("ied"):
        return _strip(word, "ied") + ("ie" if len(word) == 4 else "i")
    if word.endswith("eed"):
        stem = _strip(word, "eed")
        return stem + "ee" if _measure(stem) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix):
            intermediate = _strip(word, suffix)
            if _contains_vowel(intermediate):
                break
    else:
        return word
    last = intermediate[-1]
    return _apply_rule_list(
        intermediate,
        (
            ("at", "ate", None),
            ("bl", "ble", None),
            ("iz", "ize", None),
            ("*d", last, lambda stem: last not in ("l", "s", "z")),
            ("", "e", lambda stem: _measure(stem) == 1 and _ends_cvc(stem)),
        ),
    )


def _step1c_condition(stem: str) -> bool:
    return len(stem) > 1 and _is_consonant(stem, len(stem) - 1)


_STEP1C: tuple[_Rule, ...] = (("y", "i", _step1c_condition),)

_STEP2: tuple[_Rule, ...] = (
    ("ational", "ate", _has_positive_measure),
    ("tional", "tion", _has_positive_measure),
    ("enci", "ence", _has_positive_measure),
    ("anci", "ance", _has_positive_measure),
    ("izer", "ize", _has_positive_measure),
    ("bli", "ble", _has_positive_measure),
    ("alli", "al", _has_positive_measure),
    ("entli", "ent", _has_positive_measure),
    ("eli", "e", _has_positive_measure),
    ("ousli", "ous", _has_positive_measure),
    ("ization", "ize", _has_positive_measure),
    ("ation", "ate", _has_positive_measure),
    ("ator", "ate", _has_positive_measure),
    ("alism", "al", _has_positive_measure),
    ("iveness", "ive", _has_positive_measure),
    ("fulness", "ful", _has_positive_measure),
    ("ousness", "ous", _has_positive_measure),
    ("aliti", "al", _has_positive_measure),
    ("iviti", "ive", _has_positive_measure),
    ("biliti", "ble", _has_positive_measure),
    ("fulli", "ful", _has_positive_measure),
)


def _step2(word: str) -> str:
    if word.endswith("alli") and _has_positive_measure(_strip(word, "alli")):
        return _step2(_strip(word, "alli") + "al")
    # 'logi' -> 'log' keeps the 'l' with the stem for the measure (NLTK: ``word[:-3]``).
    return _apply_rule_list(word, (*_STEP2, ("logi", "log", lambda stem: _has_positive_measure(word[:-3]))))


_STEP3: tuple[_Rule, ...] = (
    ("icate", "ic", _has_positive_measure),
    ("ative", "", _has_positive_measure),
    ("alize", "al", _has_positive_measure),
    ("iciti", "ic", _has_positive_measure),
    ("ical", "ic", _has_positive_measure),
    ("ful", "", _has_positive_measure),
    ("ness", "", _has_positive_measure),
)


def _measure_gt_1(stem: str) -> bool:
    return _measure(stem) > 1


_STEP4: tuple[_Rule, ...] = (
    ("al", "", _measure_gt_1),
    ("ance", "", _measure_gt_1),
    ("ence", "", _measure_gt_1),
    ("er", "", _measure_gt_1),
    ("ic", "", _measure_gt_1),
    ("able", "", _measure_gt_1),
    ("ible", "", _measure_gt_1),
    ("ant", "", _measure_gt_1),
    ("ement", "", _measure_gt_1),
    ("ment", "", _measure_gt_1),
    ("ent", "", _measure_gt_1),
    ("ion", "", lambda stem: _measure(stem) > 1 and stem[-1] in ("s", "t")),
    ("ou", "", _measure_gt_1),
    ("ism", "", _measure_gt_1),
    ("ate", "", _measure_gt_1),
    ("iti", "", _measure_gt_1),
    ("ous", "", _measure_gt_1),
    ("ive", "", _measure_gt_1),
    ("ize", "", _measure_gt_1),
)


def _step5a(word: str) -> str:
    if word.endswith("e"):
        stem = word[:-1]
        if _measure(stem) > 1:
            return stem
        if _measure(stem) == 1 and not _ends_cvc(stem):
            return stem
    return word


def _step5b(word: str) -> str:
    return _apply_rule_list(word, (("ll", "l", lambda stem: _measure(word[:-1]) > 1),))


def porter_stem(word: str) -> str:
    """``nltk.stem.porter.PorterStemmer().stem(word)`` (NLTK_EXTENSIONS mode), without NLTK."""
    stem = word.lower()
    if stem in _POOL:
        return _POOL[stem]
    if len(word) <= 2:
        return stem
    stem = _step1a(stem)
    stem = _step1b(stem)
    stem = _apply_rule_list(stem, _STEP1C)
    stem = _step2(stem)
    stem = _apply_rule_list(stem, _STEP3)
    stem = _apply_rule_list(stem, _STEP4)
    stem = _step5a(stem)
    return _step5b(stem)


@lru_cache(maxsize=1 << 16)
def _stem_token(token: str) -> str:
    """rouge-score stems only tokens longer than 3 characters."""
    return porter_stem(token) if len(token) > 3 else token


# ------------------------------------------------------------------------------------------- tokens


def tokenize(text: str, use_stemmer: bool = False) -> list[str]:
    """rouge-score's ``tokenize.tokenize``: lower-case, ``[a-z0-9]+`` runs, optionally Porter-stemmed."""
    tokens = _TOKEN_RE.findall(text.lower())
    if use_stemmer:
        tokens = list(map(_stem_token, tokens))
    # A stem is never empty for a token over 3 characters; the filter keeps rouge-score's final check anyway.
    return [t for t in tokens if t]


class _Text(NamedTuple):
    tokens: list[str]
    sentences: list[list[str]]  # one token list per non-empty line (rougeLsum)


def _prepare(text: str, use_stemmer: bool, lines: bool) -> _Text:
    if not lines:
        return _Text(tokenize(text, use_stemmer), [])
    # Lower-casing and tokenising each line gives the same tokens as the whole text: the only context-dependent
    # lower-case mapping (final sigma) yields a non-ASCII letter, which is a separator either way.
    sentences = [tokenize(line, use_stemmer) for line in text.split("\n") if line]
    return _Text([t for s in sentences for t in s], sentences)


# ------------------------------------------------------------------------------------------- scores


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _rouge_n(target: list[str], prediction: list[str], n: int) -> RougeScore:
    if n == 1:
        target_grams: Counter[object] = Counter(target)
        prediction_grams: Counter[object] = Counter(prediction)
    else:
        target_grams = Counter(zip(*(target[i:] for i in range(n)), strict=False))
        prediction_grams = Counter(zip(*(prediction[i:] for i in range(n)), strict=False))
    overlap = 0
    for gram, count in target_grams.items():
        other = prediction_grams.get(gram)
        if other:
            overlap += count if count < other else other
    precision = overlap / max(max(len(prediction) - n + 1, 0), 1)
    recall = overlap / max(max(len(target) - n + 1, 0), 1)
    return RougeScore(precision, recall, _fmeasure(precision, recall))


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    """Bit ``j`` of ``masks[w]`` is set where ``tokens[j] == w``."""
    masks: dict[str, int] = {}
    bit = 1
    for token in tokens:
        masks[token] = masks.get(token, 0) | bit
        bit <<= 1
    return masks


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of a longest common subsequence (bit-parallel; rows over the longer sequence)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks = _match_masks(b)
    full = (1 << len(b)) - 1
    v = full
    get = masks.get
    for token in a:
        m = get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def _lcs_ref_indices(ref: Sequence[str], can: Sequence[str], masks: dict[str, int]) -> list[int]:
    """Indices into ``ref`` of the LCS that rouge-score's ``lcs_ind(ref, can)`` returns.

    rouge-score fills the table ``t[i][j]`` (LCS of ``ref[:i]`` and ``can[:j]``) and walks back from the corner:
    diagonal on a match, else left when ``t[i][j-1] > t[i-1][j]``, else up. Row ``i`` of that table is held as
    bits: bit ``j`` of ``rows[i]`` is 0 exactly where ``t[i][j+1] = t[i][j] + 1``, so
    ``t[i][j] = j - popcount(rows[i] & (2**j - 1))``.
    """
    n = len(can)
    if not ref or not n:
        return []
    full = (1 << n) - 1
    v = full
    rows = [v]
    get = masks.get
    for token in ref:
        m = get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
        rows.append(v)
    remaining = n - v.bit_count()
    out: list[int] = []
    i, j = len(ref), n
    # On a mismatch t[i][j] = max(t[i-1][j], t[i][j-1]), so "left when t[i][j-1] > t[i-1][j]" is "up when
    # t[i-1][j] == t[i][j]": one popcount per step. ``remaining`` is t[i][j]; at 0 no match is left.
    while remaining:
        if ref[i - 1] == can[j - 1]:
            i -= 1
            j -= 1
            out.append(i)
            remaining -= 1
        elif (rows[i - 1] & ((1 << j) - 1)).bit_count() == j - remaining:
            i -= 1
        else:
            j -= 1
    return out


def _rouge_lsum(target: _Text, prediction: _Text) -> RougeScore:
    ref_sents, can_sents = target.sentences, prediction.sentences
    m, n = len(target.tokens), len(prediction.tokens)
    if not ref_sents or not can_sents or not m or not n:
        return RougeScore(0.0, 0.0, 0.0)
    if len(ref_sents) == 1 and len(can_sents) == 1:
        # One sentence each: the union LCS is the LCS, and every LCS token is within both counts.
        hits = lcs_length(ref_sents[0], can_sents[0])
    else:
        counts_r = Counter(target.tokens)
        counts_c = Counter(prediction.tokens)
        can_masks = [_match_masks(c) for c in can_sents]
        hits = 0
        for ref in ref_sents:
            union: set[int] = set()
            for can, masks in zip(can_sents, can_masks, strict=True):
                union.update(_lcs_ref_indices(ref, can, masks))
            for index in sorted(union):
                token = ref[index]
                if counts_c[token] > 0 and counts_r[token] > 0:
                    hits += 1
                    counts_c[token] -= 1
                    counts_r[token] -= 1
    recall = hits / m
    precision = hits / n
    return RougeScore(precision, recall, _fmeasure(precision, recall))


def _rouge_l(target: list[str], prediction: list[str]) -> RougeScore:
    if not target or not prediction:
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_length(target, prediction)
    precision = lcs / len(prediction)
    recall = lcs / len(target)
    return RougeScore(precision, recall, _fmeasure(precision, recall))


def _check_types(rouge_types: Sequence[str]) -> None:
    for rouge_type in rouge_types:
        if rouge_type in ("rougeL", "rougeLsum"):
            continue
        if not _ROUGE_N_RE.match(rouge_type):
            raise ValueError(f"Invalid rouge type: {rouge_type}")
        if int(rouge_type[5:]) <= 0:
            raise ValueError(f"rougen requires positive n: {rouge_type}")


def _score(target: _Text, prediction: _Text, rouge_types: Sequence[str]) -> dict[str, RougeScore]:
    result: dict[str, RougeScore] = {}
    for rouge_type in rouge_types:
        if rouge_type == "rougeL":
            result[rouge_type] = _rouge_l(target.tokens, prediction.tokens)
        elif rouge_type == "rougeLsum":
            result[rouge_type] = _rouge_lsum(target, prediction)
        else:
            result[rouge_type] = _rouge_n(target.tokens, prediction.tokens, int(rouge_type[5:]))
    return result


def rouge_score(
    prediction: str, reference: str, use_stemmer: bool = True, rouge_types: Sequence[str] = ROUGE_TYPES
) -> dict[str, RougeScore]:
    """ROUGE of one prediction against its reference: ``{rouge_type: RougeScore(precision, recall, fmeasure)}``.

    ``rouge_types``: any of ``rouge1`` ... ``rouge9``, ``rougeL``, ``rougeLsum``.
    """
    return rouge_scores([prediction], [reference], use_stemmer, rouge_types)[0]


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    use_stemmer: bool = True,
    rouge_types: Sequence[str] = ROUGE_TYPES,
) -> list[dict[str, RougeScore]]:
    """ROUGE of each (prediction, reference) pair, in order."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    _check_types(rouge_types)
    lines = "rougeLsum" in rouge_types
    return [
        _score(_prepare(r, use_stemmer, lines), _prepare(p, use_stemmer, lines), rouge_types)
        for p, r in zip(predictions, references, strict=True)
    ]


def rouge_corpus(
    predictions: Sequence[str],
    references: Sequence[str],
    use_stemmer: bool = True,
    rouge_types: Sequence[str] = ROUGE_TYPES,
) -> dict[str, RougeScore]:
    """Corpus ROUGE: the arithmetic mean of each pair's precision, recall and F-measure (no bootstrap).

    Raises:
        ValueError: no pairs, or different numbers of predictions and references.
    """
    scores = rouge_scores(predictions, references, use_stemmer, rouge_types)
    if not scores:
        raise ValueError("no samples")
    count = len(scores)
    return {
        rouge_type: RougeScore(
            sum(s[rouge_type].precision for s in scores) / count,
            sum(s[rouge_type].recall for s in scores) / count,
            sum(s[rouge_type].fmeasure for s in scores) / count,
        )
        for rouge_type in rouge_types
    }
