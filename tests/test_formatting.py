"""Numbers read out of text, and values written into table cells."""

from __future__ import annotations

import pytest

from ptlab.formatting import cell, is_number, number_first


@pytest.mark.parametrize("text", ["2", " -0.5 ", "1e3", "0", "+7", ".5"])
def test_finite_numbers_read_as_numbers(text: str) -> None:
    assert is_number(text)


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "-inf", "1e999", "1,5", "0.1.2"])
def test_text_nan_inf_and_empty_are_not_numbers(text: str) -> None:
    assert not is_number(text)


def test_number_first_sorts_numbers_by_value_before_text_alphabetically() -> None:
    assert sorted(["b", "10", "a", "2", "-1", "nan"], key=number_first) == ["-1", "2", "10", "a", "b", "nan"]


def test_number_first_breaks_ties_of_equal_value_by_text() -> None:
    assert sorted(["2.0", "2"], key=number_first) == ["2", "2.0"]


def test_a_float_cell_has_the_given_significant_digits() -> None:
    assert cell(0.123456789) == "0.123457"  # six by default
    assert cell(0.123456789, digits=4) == "0.1235"
    assert cell(123456789.0, digits=4) == "1.235e+08"


def test_none_is_an_empty_cell_and_other_values_are_their_text() -> None:
    assert cell(None) == ""
    assert cell(3) == "3"  # an int keeps every digit
    assert cell(1234567, digits=4) == "1234567"
    assert cell("val/acc") == "val/acc"
    assert cell(True) == "True"
