"""Numbers written out in words (the translate task's generated data): the spelling rules and the splits."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ptlab.data.number_words import LANGUAGES, MAX_NUMBER, number_pairs, split_numbers, words
from ptlab.errors import ConfigError

KNOWN = {
    "en": {0: "zero", 1: "one", 13: "thirteen", 20: "twenty", 21: "twenty-one", 99: "ninety-nine",
           100: "one hundred", 101: "one hundred one", 110: "one hundred ten", 1000: "one thousand",
           1001: "one thousand one", 1999: "one thousand nine hundred ninety-nine", 20000: "twenty thousand",
           21000: "twenty-one thousand", 100000: "one hundred thousand",
           999999: "nine hundred ninety-nine thousand nine hundred ninety-nine"},
    "de": {0: "null", 1: "eins", 2: "zwei", 11: "elf", 12: "zwölf", 16: "sechzehn", 17: "siebzehn",
           21: "einundzwanzig", 30: "dreißig", 60: "sechzig", 70: "siebzig", 71: "einundsiebzig",
           97: "siebenundneunzig", 100: "einhundert", 101: "einhunderteins", 110: "einhundertzehn",
           1000: "eintausend", 1001: "eintausendeins", 1999: "eintausendneunhundertneunundneunzig",
           2001: "zweitausendeins", 21000: "einundzwanzigtausend", 100000: "einhunderttausend",
           101000: "einhunderteintausend", 101101: "einhunderteintausendeinhunderteins",
           999999: "neunhundertneunundneunzigtausendneunhundertneunundneunzig"},
    "fr": {0: "zéro", 1: "un", 16: "seize", 17: "dix-sept", 21: "vingt et un", 22: "vingt-deux", 61: "soixante et un",
           70: "soixante-dix", 71: "soixante et onze", 72: "soixante-douze", 79: "soixante-dix-neuf",
           80: "quatre-vingts", 81: "quatre-vingt-un", 90: "quatre-vingt-dix", 91: "quatre-vingt-onze",
           97: "quatre-vingt-dix-sept", 100: "cent", 101: "cent un", 180: "cent quatre-vingts", 200: "deux cents",
           201: "deux cent un", 280: "deux cent quatre-vingts", 1000: "mille", 1001: "mille un",
           1999: "mille neuf cent quatre-vingt-dix-neuf", 2000: "deux mille", 21000: "vingt et un mille",
           80000: "quatre-vingt mille", 80080: "quatre-vingt mille quatre-vingts", 101000: "cent un mille",
           200000: "deux cent mille", 200200: "deux cent mille deux cents",
           999999: "neuf cent quatre-vingt-dix-neuf mille neuf cent quatre-vingt-dix-neuf"},
}
SIZES = dict(max_number=9999, train_size=800, val_size=100, test_size=200)


def large_sample() -> list[int]:
    """Random numbers of the whole range plus the structured ones most likely to collide (n000, n00n, n0n)."""
    random = np.random.default_rng(1).choice(MAX_NUMBER + 1, size=20_000, replace=False).tolist()
    structured = [m * 1000 + r for m in range(1, 1000) for r in (0, 1, m)]
    return sorted(set(random + structured))


def refused(match: str, **kwargs) -> str:
    """number_pairs(**kwargs) raises a one-line ConfigError starting with ``match``; its message."""
    with pytest.raises(ConfigError, match="^" + re.escape(match)) as err:
        number_pairs(**kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("language", "n", "expected"),
                         [(language, n, text) for language, table in KNOWN.items() for n, text in table.items()])
def test_known_values(language: str, n: int, expected: str) -> None:
    assert words(n, language) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_number_below_1000_has_its_own_words(language: str) -> None:
    written = [words(n, language) for n in range(1000)]
    assert all(written)
    assert len(set(written)) == 1000


@pytest.mark.parametrize("language", LANGUAGES)
def test_large_numbers_have_their_own_words(language: str) -> None:
    sample = large_sample()
    assert len({words(n, language) for n in sample}) == len(sample)


@pytest.mark.parametrize("language", LANGUAGES)
def test_words_are_single_spaced_lowercase(language: str) -> None:
    for n in large_sample()[::7] + list(range(1000)):
        text = words(n, language)
        assert text == text.strip() and "  " not in text and "--" not in text and text == text.lower(), (n, text)


def test_english_never_says_and() -> None:
    assert not any(" and " in words(n, "en") for n in large_sample()[::5] + list(range(1000)))


def test_german_writes_each_number_as_one_word() -> None:
    assert not any(re.search(r"[\s-]", words(n, "de")) for n in large_sample()[::5] + list(range(1000)))


def test_german_one_is_eins_only_at_the_end() -> None:
    for n in range(1, 1000):
        inside, last = words(n * 1000, "de"), words(n, "de")
        assert "eins" not in inside, (n, inside)
        assert last.endswith("eins") == (n % 100 == 1), (n, last)


def test_french_cent_and_vingt_take_s_only_when_multiplied_and_last() -> None:
    for hundreds in range(2, 10):
        assert words(hundreds * 100, "fr").endswith(" cents")
        assert words(hundreds * 100 + 1, "fr").endswith(" cent un")
        assert words(hundreds * 100_000, "fr").endswith(" cent mille")
    assert words(100, "fr") == "cent" and words(100_000, "fr") == "cent mille"
    assert words(80, "fr").endswith("vingts") and words(80_000, "fr") == "quatre-vingt mille"
    assert not any("milles" in words(n, "fr") for n in large_sample()[::5])


def test_french_joins_with_et_only_for_one_and_seventy_one() -> None:
    with_et = {n for n in range(100) if " et " in words(n, "fr")}
    assert with_et == {21, 31, 41, 51, 61, 71}


@pytest.mark.parametrize("n", [-1, MAX_NUMBER + 1])
def test_words_refuses_numbers_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match=str(MAX_NUMBER)):
        words(n, "en")


def test_words_refuses_unknown_language() -> None:
    with pytest.raises(ValueError, match="'es'"):
        words(7, "es")


def test_number_pairs_are_deterministic() -> None:
    assert number_pairs("en", "de", split_seed=3, **SIZES) == number_pairs("en", "de", split_seed=3, **SIZES)


def test_number_pairs_change_with_split_seed() -> None:
    first, second = number_pairs("en", "fr", split_seed=0, **SIZES), number_pairs("en", "fr", split_seed=1, **SIZES)
    assert all(first[name] != second[name] for name in ("train", "val", "test"))


def test_split_sizes() -> None:
    pairs = number_pairs("de", "fr", split_seed=0, **SIZES)
    assert {name: len(split) for name, split in pairs.items()} == {"train": 800, "val": 100, "test": 200}


def test_splits_are_disjoint_numbers_in_range() -> None:
    numbers = split_numbers(split_seed=0, **SIZES)
    together = np.concatenate([numbers["train"], numbers["val"], numbers["test"]])
    assert len(np.unique(together)) == len(together) == 1100
    assert together.min() >= 0 and together.max() <= SIZES["max_number"]


def test_val_and_test_sentences_never_appear_in_training() -> None:
    pairs = number_pairs("en", "de", split_seed=0, **SIZES)
    train = {source for source, _ in pairs["train"]}
    assert not train & {source for source, _ in pairs["val"] + pairs["test"]}


def test_pairs_are_the_words_of_the_split_numbers() -> None:
    numbers = split_numbers(split_seed=5, **SIZES)
    pairs = number_pairs("fr", "en", split_seed=5, **SIZES)
    for name in ("train", "val", "test"):
        assert pairs[name] == [(words(n, "fr"), words(n, "en")) for n in numbers[name].tolist()]


def test_all_numbers_can_be_used() -> None:
    numbers = split_numbers(max_number=9, train_size=6, val_size=2, test_size=2, split_seed=0)
    assert sorted(np.concatenate(list(numbers.values())).tolist()) == list(range(10))


def test_unknown_source_language_is_refused() -> None:
    message = refused("data.source: 'xx' is not a language of data=number_words", source="xx", target="de",
                      split_seed=0, **SIZES)
    assert "en, de, fr" in message


def test_unknown_target_language_is_refused() -> None:
    message = refused("data.target: 'es' is not a language of data=number_words", source="en", target="es",
                      split_seed=0, **SIZES)
    assert "en, de, fr" in message


def test_same_source_and_target_is_refused() -> None:
    refused("data.target:", source="de", target="de", split_seed=0, **SIZES)


@pytest.mark.parametrize("max_number", [0, MAX_NUMBER + 1])
def test_max_number_out_of_range_is_refused(max_number: int) -> None:
    message = refused("data.max_number:", source="en", target="de", max_number=max_number, train_size=1,
                      val_size=0, test_size=0, split_seed=0)
    assert f"1..{MAX_NUMBER}" in message


def test_more_pairs_than_numbers_is_refused() -> None:
    message = refused("data.train_size:", source="en", target="de", max_number=99, train_size=80, val_size=11,
                      test_size=10, split_seed=0)
    assert "101" in message and "100" in message
