"""Cardinal numbers written out in words in English, German and French: the generated data of the translate task.

A pair is one number n in two languages, e.g. 71: en "seventy-one" → de "einundsiebzig" →
fr "soixante et onze". Small as it is, it is a real translation problem: German puts the
units before the tens and writes every number below a million as one word, French counts
in twenties from 70 to 99, and each language has its own exceptions. All numbers are
masculine, lowercase and from 0 to :data:`MAX_NUMBER` (999 999); a number of thousands is
the number below 1000 that counts them, then the word for thousand, then the rest.

English (American, no "and"; words separated by one space, tens and units by a hyphen):

    0 zero, 13 thirteen, 21 twenty-one, 100 one hundred, 101 one hundred one,
    1999 one thousand nine hundred ninety-nine, 20000 twenty thousand

German (standard orthography with ä-ö-ü-ß, one word without spaces or hyphens):

    units before tens, joined by "und":         21 einundzwanzig, 97 siebenundneunzig
    the irregular ones:                          16 sechzehn, 17 siebzehn, 30 dreißig, 60 sechzig, 70 siebzig
    hundert and tausend always have a count:    100 einhundert, 1000 eintausend, 100000 einhunderttausend
    1 is "eins" only at the very end,           101 einhunderteins, 2001 zweitausendeins, but
    "ein" before anything else:                 21000 einundzwanzigtausend, 101000 einhunderteintausend

French (traditional spelling, the rules before the 1990 reform):

    hyphens between tens and units below 100:   17 dix-sept, 72 soixante-douze, 97 quatre-vingt-dix-sept
    except where "et" joins 1 (or 11 after 60): 21 vingt et un, 61 soixante et un, 71 soixante et onze,
    but not after 80:                           81 quatre-vingt-un, 91 quatre-vingt-onze
    spaces everywhere else:                     101 cent un, 201 deux cent un,
                                                1999 mille neuf cent quatre-vingt-dix-neuf
    no count before cent and mille for 1:       100 cent, 1000 mille, 1001 mille un (but 21000 vingt et un mille)
    "vingt" and "cent" take an s when multiplied and last in the whole number, nowhere else:
                                                80 quatre-vingts, 200 deux cents, 180 cent quatre-vingts,
                                                but 80000 quatre-vingt mille, 200000 deux cent mille, 201 deux cent un
    "mille" never takes an s:                   2000 deux mille

Splits (:func:`split_numbers`): train, val and test are distinct numbers drawn without
replacement from 0..max_number, so a model is scored on numbers it never saw in training.
"""

from __future__ import annotations

import operator

import numpy as np

from ptlab.errors import ConfigError

LANGUAGES = ("en", "de", "fr")
MAX_NUMBER = 999_999  # the largest number words() writes

_EN_BELOW_20 = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_DE_BELOW_20 = ("null", "ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
                "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn", "neunzehn")
_DE_TENS = ("", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig")

_FR_BELOW_17 = ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
                "douze", "treize", "quatorze", "quinze", "seize")
_FR_TENS = ("", "", "vingt", "trente", "quarante", "cinquante", "soixante")


def words(n: int, language: str) -> str:
    """n (0 ≤ n ≤ MAX_NUMBER) written out in ``language`` (one of LANGUAGES), by the module docstring's rules."""
    n = operator.index(n)
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"words() writes the numbers 0..{MAX_NUMBER}, not {n}")
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return _WRITERS[language](n)


def split_numbers(max_number: int, train_size: int, val_size: int, test_size: int,
                  split_seed: int) -> dict[str, np.ndarray]:
    """{"train", "val", "test"}: distinct numbers of 0..max_number, in the order drawn.

    One draw of train_size + val_size + test_size numbers without replacement from
    ``np.random.default_rng(np.random.SeedSequence(split_seed))``, cut in that order, so the
    same arguments give the same numbers and no number is in two splits.
    """
    if not 1 <= max_number <= MAX_NUMBER:
        raise ConfigError(f"data.max_number: {max_number} is out of range; choose a number in 1..{MAX_NUMBER}")
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for name, size in sizes.items():
        if size < 0:
            raise ConfigError(f"data.{name}_size: {size} is negative; give a number of pairs, 0 or more")
    total, available = sum(sizes.values()), max_number + 1
    if total > available:
        raise ConfigError(f"data.train_size: train_size + val_size + test_size ask for {total} distinct numbers, but "
                          f"0..{max_number} holds only {available}; lower the sizes or raise data.max_number")
    rng = np.random.default_rng(np.random.SeedSequence(split_seed % 2**64))  # % 2**64: a negative seed works too
    drawn = rng.choice(available, size=total, replace=False)
    cuts = np.cumsum([train_size, val_size])
    return dict(zip(sizes, np.split(drawn, cuts)))


def number_pairs(source: str, target: str, max_number: int, train_size: int, val_size: int, test_size: int,
                 split_seed: int) -> dict[str, list[tuple[str, str]]]:
    """{"train": [(source words, target words), ...], "val": [...], "test": [...]}: one pair for each number of
    :func:`split_numbers`, in its order, so val and test numbers never appear in training; the same arguments give
    the same pairs in the same order."""
    choices = ", ".join(LANGUAGES)
    for key, language in (("source", source), ("target", target)):
        if language not in LANGUAGES:
            raise ConfigError(f"data.{key}: {language!r} is not a language of data=number_words; choose one of "
                              f"{choices}")
    if source == target:
        raise ConfigError(f"data.target: {target!r} is also data.source, so there is nothing to translate; choose "
                          f"another of {choices}")
    splits = split_numbers(max_number, train_size, val_size, test_size, split_seed)
    return {name: [(words(n, source), words(n, target)) for n in numbers.tolist()] for name, numbers in splits.items()}


def _english(n: int) -> str:
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _english_below_1000(n)
    head = _english_below_1000(thousands) + " thousand"
    return f"{head} {_english_below_1000(rest)}" if rest else head


def _english_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _english_below_100(n)
    head = _EN_BELOW_20[hundreds] + " hundred"
    return f"{head} {_english_below_100(rest)}" if rest else head


def _english_below_100(n: int) -> str:
    if n < 20:
        return _EN_BELOW_20[n]
    tens, units = divmod(n, 10)
    return f"{_EN_TENS[tens]}-{_EN_BELOW_20[units]}" if units else _EN_TENS[tens]


def _german(n: int) -> str:
    if n == 0:
        return "null"
    thousands, rest = divmod(n, 1000)
    head = _german_below_1000(thousands, last=False) + "tausend" if thousands else ""
    return head + (_german_below_1000(rest, last=True) if rest else "")


def _german_below_1000(n: int, last: bool) -> str:
    """1 ≤ n ≤ 999; ``last``: nothing follows, so a final 1 is "eins" (einhunderteins, not einhundertein)."""
    hundreds, rest = divmod(n, 100)
    head = _DE_BELOW_20[hundreds] + "hundert" if hundreds else ""
    if not rest:
        return head
    if rest == 1:
        return head + ("eins" if last else "ein")
    if rest < 20:
        return head + _DE_BELOW_20[rest]
    tens, units = divmod(rest, 10)
    return head + (f"{_DE_BELOW_20[units]}und" if units else "") + _DE_TENS[tens]


def _french(n: int) -> str:
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _french_below_1000(n, last=True)
    head = "mille" if thousands == 1 else _french_below_1000(thousands, last=False) + " mille"
    return f"{head} {_french_below_1000(rest, last=True)}" if rest else head


def _french_below_1000(n: int, last: bool) -> str:
    """0 ≤ n ≤ 999; ``last``: nothing follows, so a multiplied cent or vingt takes its s (deux cents, but deux cent
    mille)."""
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _french_below_100(n, last)
    head = "cent" if hundreds == 1 else _FR_BELOW_17[hundreds] + " cent" + ("s" if last and not rest else "")
    return f"{head} {_french_below_100(rest, last)}" if rest else head


def _french_below_100(n: int, last: bool) -> str:
    if n < 17:
        return _FR_BELOW_17[n]
    if n < 20:
        return "dix-" + _FR_BELOW_17[n - 10]
    if n < 70:
        tens, units = divmod(n, 10)
        if not units:
            return _FR_TENS[tens]
        return _FR_TENS[tens] + (" et un" if units == 1 else "-" + _FR_BELOW_17[units])
    if n < 80:  # soixante-dix … soixante-dix-neuf: sixty plus 10..19
        return "soixante et onze" if n == 71 else "soixante-" + _french_below_100(n - 60, last)
    if n == 80:
        return "quatre-vingts" if last else "quatre-vingt"
    return "quatre-vingt-" + _french_below_100(n - 80, last)  # 81 quatre-vingt-un … 99 quatre-vingt-dix-neuf


_WRITERS = {"en": _english, "de": _german, "fr": _french}
