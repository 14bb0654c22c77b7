"""fmops.metrics.rouge against Google's rouge-score 0.1.2 and NLTK's Porter stemmer (both installed for tests only).

Every ROUGE variant's precision, recall and F-measure, with and without stemming, to 1e-9 (in practice identical).
"""

from __future__ import annotations

import random

import pytest
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer
from rouge_score import tokenize as rs_tokenize

from fmops.metrics import ROUGE_TYPES, porter_stem, rouge_corpus, rouge_score, rouge_scores
from fmops.metrics.rouge import _lcs_ref_indices, _match_masks, lcs_length, tokenize

TOL = 1e-9
SCORERS = {stem: rouge_scorer.RougeScorer([*ROUGE_TYPES, "rouge3"], use_stemmer=stem) for stem in (False, True)}

WORDS = (
    "the a an of and to in is was were be been running runs ran runner happily happy happiness generalization "
    "generalizations relational conditional rational valenci hesitanci digitizer conformabli radicalli differentli "
    "vileli analogousli vietnamization predication operator feudalism decisiveness hopefulness callousness "
    "formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful goodness "
    "revival allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment "
    "dependent adoption homologou communism activate angulariti homologous effective bowdlerize probate rate "
    "cease controll roll skies dying lying tying news innings outings cannings howe proceed exceed succeed "
    "flies dies spied died agreed feed plastered bled motoring sing conflated troubled sized hopping tanned "
    "falling hissing fizzed failing filing caresses ponies ties caress cats enjoy spy fly try sky "
    "archaeology geology theology 2024 3 14 42nd covid19 x y yy yyyy syzygy"
).split()
NOISE = (
    ",",
    ".",
    "!",
    "?",
    ";",
    " -",
    "'s",
    "n't",
    " (",
    ") ",
    '"',
    " 3.5%",
    " $12",
    " café",
    " naïve",
    " 日本 ",
    " İ",
    " K",
)


def random_text(rng: random.Random, vocabulary: list[str], max_words: int, min_words: int = 0) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(min_words, max_words)):
        word = rng.choice(vocabulary)
        if rng.random() < 0.1:
            word = word.upper() if rng.random() < 0.5 else word.capitalize()
        parts.append(word)
        r = rng.random()
        if r < 0.1:
            parts.append(rng.choice(NOISE))
        elif r < 0.18:
            parts.append(rng.choice(("\n", "\n", "\n\n", " \n", "\r\n")))
    return " ".join(parts)


def assert_same(prediction: str, reference: str, stem: bool) -> None:
    types = [*ROUGE_TYPES, "rouge3"]
    expected = SCORERS[stem].score(reference, prediction)
    ours = rouge_score(prediction, reference, use_stemmer=stem, rouge_types=types)
    for rouge_type in types:
        for a, b in zip(ours[rouge_type], expected[rouge_type], strict=True):
            assert abs(a - b) <= TOL, (rouge_type, ours[rouge_type], expected[rouge_type], prediction, reference)


# ------------------------------------------------------------------------------------------- stemmer, tokens


def generated_words(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    suffixes = (
        "|s|es|ies|ied|ed|ing|eed|ational|tional|enci|anci|izer|bli|alli|entli|eli|ousli|ization|ation|ator|alism|"
        "iveness|fulness|ousness|aliti|iviti|biliti|fulli|logi|icate|ative|alize|iciti|ical|ful|ness|al|ance|ence|"
        "er|ic|able|ible|ant|ement|ment|ent|ion|sion|tion|ou|ism|ate|iti|ous|ive|ize|e|ll|y|ly|at|bl|iz|sses|ss"
    ).split("|")
    letters = "abcdefghijklmnopqrstuvwxyz" + "aeiouyyy0"
    words = []
    for _ in range(count):
        stem = "".join(rng.choice(letters) for _ in range(rng.randint(1, 7)))
        words.append(stem + rng.choice(suffixes) + (rng.choice(suffixes) if rng.random() < 0.3 else ""))
    return words


def test_porter_stem_matches_nltk() -> None:
    nltk_stemmer = PorterStemmer()
    words = [*WORDS, *generated_words(0, 40_000), "", "a", "ab", "yyyyyyyyyyyy", "ied", "ies", "ying", "eing"]
    mismatches = [(w, porter_stem(w), nltk_stemmer.stem(w)) for w in words if porter_stem(w) != nltk_stemmer.stem(w)]
    assert not mismatches[:20]


@pytest.mark.parametrize("stem", [False, True])
def test_tokenize_matches_rouge_score(stem: bool) -> None:
    rng = random.Random(1)
    stemmer = PorterStemmer() if stem else None
    for _ in range(500):
        text = random_text(rng, WORDS, 30)
        assert tokenize(text, stem) == rs_tokenize.tokenize(text, stemmer)


# ------------------------------------------------------------------------------------------- LCS


def dp_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def test_bit_parallel_lcs_matches_the_table() -> None:
    rng = random.Random(2)
    for _ in range(2000):
        alphabet = "abcdef"[: rng.randint(1, 6)]
        a = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        b = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        assert lcs_length(a, b) == dp_lcs(a, b)


def test_lcs_backtracking_picks_rouge_scores_lcs() -> None:
    """Ties are frequent on small alphabets: the union LCS of Lsum depends on which LCS is read back."""
    rng = random.Random(3)
    for _ in range(3000):
        alphabet = "abcd"[: rng.randint(1, 4)]
        ref = [rng.choice(alphabet) for _ in range(rng.randint(0, 25))]
        can = [rng.choice(alphabet) for _ in range(rng.randint(0, 25))]
        ours = sorted(_lcs_ref_indices(ref, can, _match_masks(can)))
        assert ours == rouge_scorer.lcs_ind(ref, can), (ref, can)


# ------------------------------------------------------------------------------------------- scores


@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_random_pairs_match_rouge_score(seed: int, stem: bool) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        # A small vocabulary makes repeated tokens and LCS ties; a large one makes near-misses.
        vocabulary = WORDS[: rng.choice((4, 12, len(WORDS)))]
        reference = random_text(rng, vocabulary, 60)
        if rng.random() < 0.5:  # a prediction that overlaps the reference
            words = reference.split(" ")
            kept = [w for w in words if rng.random() < 0.8]
            prediction = " ".join(kept + [rng.choice(vocabulary) for _ in range(rng.randint(0, 5))])
        else:
            prediction = random_text(rng, vocabulary, 60)
        assert_same(prediction, reference, stem)


EDGE_CASES = [
    ("", ""),
    ("", "the cat sat"),
    ("the cat sat", ""),
    ("!!! ... ???", "--- ,,,"),  # punctuation only: no token
    ("the cat sat", "!!!"),
    ("\n\n\n", "the cat\n\nsat"),  # blank lines only
    ("the cat sat on the mat", "the cat sat on the mat"),  # identical
    ("a b c d", "e f g h"),  # all wrong
    ("the the the the", "the the"),  # clipped counts
    ("cats running quickly", "cat runs quick"),  # stemming matters
    ("Café naïve résumé déjà vu", "cafe naive resume deja vu"),  # accents split words
    ("İstanbul KELVIN straße ΣΊΣΥΦΟΣ", "istanbul kelvin strasse"),  # lower() that expands or maps to ASCII
    ("日本語のテキスト 123", "123 日本語"),
    ("emoji 🙂 between 🙂 words", "emoji between words"),
    ("3.14159 is pi, 42 is the answer; 2024-01-01", "pi is 3 14159 and 42 2024 01 01"),
    ("don't won't can't", "do not will not cannot"),
    ("line one\nline two\nline three", "line three\nline two\nline one"),  # Lsum: sentence order
    ("a b a b\nb a b a", "a a b b\nb b a a\na b"),  # Lsum: union LCS with ties
    ("x\r\ny\r\n", "x y"),
    ("tab\tseparated\twords", "tab separated words"),
    ("yyyy syzygy skies dying", "yyyy syzygy sky die"),
]


@pytest.mark.parametrize("stem", [False, True])
@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_cases_match_rouge_score(case: tuple[str, str], stem: bool) -> None:
    assert_same(*case, stem)
    assert_same(case[1], case[0], stem)


@pytest.mark.parametrize("stem", [False, True])
def test_long_texts_match_rouge_score(stem: bool) -> None:
    rng = random.Random(4)
    reference = random_text(rng, WORDS, 1200, min_words=1200)
    assert len(tokenize(reference)) > 1000
    prediction = " ".join(w for w in reference.split(" ") if rng.random() < 0.85)
    assert_same(prediction, reference, stem)
    single_line = reference.replace("\n", " ")
    assert_same(single_line[: len(single_line) // 2], single_line, stem)


def test_identical_texts_score_one() -> None:
    scores = rouge_score("The cat sat.\nOn the mat.", "The cat sat.\nOn the mat.")
    assert all(s.fmeasure == 1.0 for s in scores.values())


def test_batch_and_corpus() -> None:
    rng = random.Random(5)
    references = [random_text(rng, WORDS, 30) for _ in range(40)]
    predictions = [random_text(rng, WORDS, 30) for _ in range(40)]
    per_pair = rouge_scores(predictions, references, use_stemmer=True)
    assert per_pair == [rouge_score(p, r) for p, r in zip(predictions, references, strict=True)]
    corpus = rouge_corpus(predictions, references)
    for rouge_type in ROUGE_TYPES:
        expected = [SCORERS[True].score(r, p)[rouge_type] for p, r in zip(predictions, references, strict=True)]
        for field in range(3):
            mean = sum(e[field] for e in expected) / len(expected)
            assert abs(corpus[rouge_type][field] - mean) <= TOL


def test_rouge_types() -> None:
    assert list(rouge_score("a b c", "a b c", rouge_types=["rouge9", "rougeL"])) == ["rouge9", "rougeL"]
    with pytest.raises(ValueError, match="Invalid rouge type"):
        rouge_score("a", "a", rouge_types=["rougeX"])
    with pytest.raises(ValueError, match="positive n"):
        rouge_score("a", "a", rouge_types=["rouge0"])
    with pytest.raises(ValueError, match="references"):
        rouge_scores(["a"], [])
    with pytest.raises(ValueError, match="no samples"):
        rouge_corpus([], [])
