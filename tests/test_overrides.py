"""The one parser of Hydra command-line overrides, and the keys that differ between runs."""

from __future__ import annotations

import pytest

from ptlab.overrides import Override, all_keys, differing_keys, naming_keys, override_values


@pytest.mark.parametrize("arg, prefix, key, value", [
    ("optimizer.lr=0.1", "", "optimizer.lr", "0.1"),
    ("+trainer.extra=1", "+", "trainer.extra", "1"),
    ("++trainer.extra=1", "++", "trainer.extra", "1"),  # force-add: the key is still trainer.extra
    ("~model", "~", "model", None),
    ("~model=simple_cnn", "~", "model", "simple_cnn"),
    ("hydra/launcher=joblib", "", "hydra/launcher", "joblib"),
])
def test_every_prefix_form_gives_the_bare_key_the_prefix_and_the_value(arg, prefix, key, value) -> None:
    assert Override.parse(arg) == Override(prefix, key, value)


def test_a_value_containing_equals_signs_is_kept_whole() -> None:
    assert Override.parse("data.path=a=b.csv") == Override("", "data.path", "a=b.csv")
    assert Override.parse("+data.path==x") == Override("+", "data.path", "=x")


def test_quoted_values_and_sweeps_are_kept_as_written() -> None:
    assert Override.parse("data.path='a b=c.csv'").value == "'a b=c.csv'"
    assert Override.parse('prompt="hi"').value == '"hi"'
    assert Override.parse("seed=0,1,2").value == "0,1,2"


def test_an_empty_value_is_not_a_missing_one() -> None:
    assert Override.parse("x=").value == ""
    assert Override.parse("~x").value is None


def test_override_values_drop_prefixes_and_the_last_override_of_a_key_wins() -> None:
    values = override_values(["seed=0", "+extra=1", "~model", "optimizer.lr=0.1", "++seed=3"])
    assert values == {"seed": "3", "extra": "1", "model": "", "optimizer.lr": "0.1"}
    assert list(values) == ["seed", "extra", "model", "optimizer.lr"]  # where each key first appeared


def test_all_keys_are_in_the_order_they_first_appear() -> None:
    assert all_keys([{"b": 1, "a": 2}, {"c": 3, "a": 4}, {}]) == ["b", "a", "c"]
    assert all_keys([]) == []


def test_keys_with_equal_values_in_every_run_do_not_differ() -> None:
    assert differing_keys([{"task": "cnn", "seed": "0"}, {"task": "cnn", "seed": "0"}]) == []


def test_keys_with_different_values_differ_in_the_order_they_first_appear() -> None:
    runs = [{"task": "cnn", "seed": "0", "lr": "0.1"}, {"lr": "0.5", "task": "cnn", "seed": "1"}]
    assert differing_keys(runs) == ["seed", "lr"]


def test_a_key_missing_from_one_run_differs_even_from_none() -> None:
    assert differing_keys([{"a": "1", "b": "2"}, {"a": "1"}]) == ["b"]
    assert differing_keys([{"b": None}, {}]) == ["b"]
    assert differing_keys([{}, {"b": "2"}]) == ["b"]


def test_nested_values_are_compared_whole_not_flattened_into_keys() -> None:
    same = [{"model": {"width": 8, "act": "relu"}}, {"model": {"act": "relu", "width": 8}}]
    assert differing_keys(same) == []
    assert differing_keys([{"model": {"width": 8}}, {"model": {"width": 16}}]) == ["model"]
    assert differing_keys([{"sizes": [1, 2]}, {"sizes": [1, 2]}, {"sizes": [2, 1]}]) == ["sizes"]


def test_fewer_than_two_runs_have_no_differing_keys() -> None:
    assert differing_keys([{"a": "1"}]) == []
    assert differing_keys([]) == []


def test_runs_are_named_by_the_keys_that_differ_and_a_single_run_by_all_of_its_keys() -> None:
    runs = [{"seed": "0", "optimizer.lr": "0.1"}, {"seed": "1", "optimizer.lr": "0.1"}]
    assert naming_keys(runs) == ["seed"]
    assert naming_keys(runs[:1]) == ["seed", "optimizer.lr"]
    assert naming_keys([]) == []
