"""MinHash signatures: estimates track exact Jaccard; deterministic; independent of batching."""

from __future__ import annotations

import random

import numpy as np
import pytest

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup.minhash import MinHasher, _word_bytes, jaccard, shingle_words

from .textgen import block_edit, doc, exact_jaccard

CFG = MinHashConfig()  # 5-grams, 14 bands x 8 rows = 112 functions, seed 1


def test_shingle_words_normalises_case_punctuation_and_space() -> None:
    assert shingle_words("Hello, World!\tIt's  a_test\u00a0— ok.") == [
        "hello", "world", "it", "s", "a", "test", "ok",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Plain ascii, words.",
        "Café — naïve\u2003résumé «quoted» x_y",
        "日本語 テキスト。",
    ],
)
def test_fast_word_split_equals_reference(text: str) -> None:
    assert _word_bytes(text) == [w.encode() for w in shingle_words(text)]


def test_estimated_jaccard_tracks_exact() -> None:
    # Std of the estimate is sqrt(J(1-J)/112) <= 0.047: require mean |error| < 0.04, max < 0.15.
    rng = random.Random(0)
    hasher = MinHasher(CFG)
    errors = []
    for frac in [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7]:
        for _ in range(4):
            a = doc(rng, 300)
            b = block_edit(rng, a, frac)
            sig = hasher.signatures([a, b])
            errors.append(float(np.mean(sig[0] == sig[1])) - exact_jaccard(a, b))
    errors_abs = np.abs(errors)
    assert errors_abs.mean() < 0.04 and errors_abs.max() < 0.15, errors


def test_exact_jaccard_of_hashed_shingles_matches_reference() -> None:
    rng = random.Random(1)
    hasher = MinHasher(CFG)
    for frac in [0.0, 0.1, 0.4]:
        a = doc(rng, 120)
        b = block_edit(rng, a, frac) if frac else a
        got = jaccard(hasher.shingle_set(a), hasher.shingle_set(b))
        assert got == pytest.approx(exact_jaccard(a, b), abs=1e-12)


def test_identical_and_renormalised_docs_share_signatures() -> None:
    hasher = MinHasher(CFG)
    sig = hasher.signatures(["The cat sat on the mat today.", "the CAT sat, on the mat today"])
    assert sig.shape == (2, 112) and sig.dtype == np.uint32
    assert (sig[0] == sig[1]).all()


def test_short_docs_have_one_shingle_of_all_their_words() -> None:
    hasher = MinHasher(CFG)
    assert len(hasher.shingle_set("two words")) == 1
    assert len(hasher.shingle_set("")) == 1
    sig = hasher.signatures(["two words", "Two words!", "words two", ""])
    assert (sig[0] == sig[1]).all() and (sig[0] != sig[2]).any() and (sig[0] != sig[3]).any()


def test_deterministic_and_independent_of_batch() -> None:
    rng = random.Random(2)
    texts = [doc(rng, rng.randint(1, 3000)) for _ in range(40)] + ["", "x"]
    full = MinHasher(CFG).signatures(texts)
    again = MinHasher(CFG).signatures(texts)
    pieces = np.concatenate([MinHasher(CFG).signatures(texts[i : i + 7]) for i in range(0, 42, 7)])
    singles = np.concatenate([MinHasher(CFG).signatures([t]) for t in texts])
    assert (full == again).all() and (full == pieces).all() and (full == singles).all()
    other_seed = MinHasher(CFG.model_copy(update={"seed": 2})).signatures(texts)
    assert (other_seed != full).mean() > 0.99


def test_empty_batch() -> None:
    assert MinHasher(CFG).signatures([]).shape == (0, 112)
