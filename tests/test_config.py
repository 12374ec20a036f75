"""The schema: YAML files and signatures agree, and every value is type- and range-checked."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

import pytest
import yaml

import ptlab
from ptlab import catalog
from ptlab.config import (
    CheckpointConfig, PositiveFloat, Probability, RootConfig, TrainerConfig, check_value, validate,
)
from ptlab.errors import ConfigError
from ptlab.paths import CONFIG_DIR

GROUPS = {"model": catalog.MODELS, "data": catalog.DATASETS, "optimizer": catalog.OPTIMIZERS,
          "scheduler": catalog.SCHEDULERS, "objective": catalog.OBJECTIVES}


def config_files(group: str) -> list[Path]:
    return sorted((CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_file_matches_its_registry_entry(group: str) -> None:
    """Each configs/<group>/<name>.yaml names its entry and lists exactly its config keys with their defaults."""
    registry = GROUPS[group]
    for file in config_files(group):
        node = yaml.safe_load(file.read_text())
        assert node["name"] == file.stem, file
        fn = registry.get(node["name"], group)
        params = inspect.signature(fn).parameters
        expected = {n for n, p in params.items() if n not in registry.injected and n != "self"}
        assert set(node) - {"name"} == expected, file
        for key, value in node.items():
            default = params[key].default if key in params else inspect.Parameter.empty
            if default is not inspect.Parameter.empty and value != "???":
                assert value == (list(default) if isinstance(default, tuple) else default), f"{file}: {key}"


def test_every_registered_entry_has_a_config_file() -> None:
    for group, registry in GROUPS.items():
        assert sorted(p.stem for p in config_files(group)) == registry.names(), group


@pytest.mark.parametrize("group, schema", [("trainer", TrainerConfig), ("checkpoint", CheckpointConfig)])
def test_fixed_sections_match_their_dataclass(group: str, schema: type) -> None:
    node = yaml.safe_load((CONFIG_DIR / group / "default.yaml").read_text())
    assert set(node) == {f.name for f in fields(schema)}


def test_tasks_only_pick_defaults() -> None:
    for file in config_files("task"):
        text = file.read_text()
        assert text.startswith("# @package _global_")
        node = yaml.safe_load(text)
        assert node["task"] == file.stem
        picked = {next(iter(d)).split("/")[-1].split(" ")[-1] for d in node["defaults"]}
        assert picked == {"objective", "data", "model", "optimizer", "scheduler"}
        # What a task sets for an option it picks is in configs/task_options/ (tests/test_swap.py), not here,
        # where it would leak into whichever option replaces that one.
        assert set(node) <= {"defaults", "task", "trainer", "checkpoint"}


@pytest.mark.parametrize("task", ["linreg", "logreg", "cnn", "gan", "rnn", "transformer"])
def test_every_task_composes_and_validates(task: str) -> None:
    cfg = ptlab.compose([f"task={task}"])
    validate(cfg)
    assert cfg.task == task and set(RootConfig.__dataclass_fields__) <= set(cfg)


@pytest.mark.parametrize("value, hint, ok", [
    (3, int, True), (True, int, False), ("3", int, False), (1, float, True), (0.5, Probability, True),
    (1.0, Probability, False), (-1e-3, PositiveFloat, False), (None, Optional[int], True), ("x", Optional[int], False),
    ([1, 2], Sequence[int], True), ([1, "a"], Sequence[int], False), ("32", TrainerConfig.__annotations__["precision"], True),
])
def test_check_value(value, hint, ok: bool) -> None:
    import typing

    hint = typing.get_type_hints(TrainerConfig, include_extras=True)["precision"] if isinstance(hint, str) else hint
    if ok:
        check_value("k", value, hint)
    else:
        with pytest.raises(ConfigError, match="^k: "):
            check_value("k", value, hint)


def test_precision_accepts_numbers_and_bf16() -> None:
    for value in ("32", "bf16", "16"):
        validate(ptlab.compose([f"trainer.precision={value}"]))
    with pytest.raises(ConfigError, match="trainer.precision: 'fp8' is not one of 32, bf16, 16"):
        validate(ptlab.compose(["trainer.precision=fp8"]))


def test_registry_nodes_reject_keys_the_callable_does_not_take() -> None:
    with pytest.raises(ConfigError, match=r"model.dropuot: unknown key .*Did you mean 'dropout'"):
        validate(ptlab.compose(["+model.dropuot=0.1"]))
    with pytest.raises(ConfigError, match="model.num_classes: ptlab sets this one itself"):
        validate(ptlab.compose(["+model.num_classes=3"]))


def test_compose_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="data: unknown option 'digit'. Did you mean 'digits'"):
        ptlab.compose(["data=digit"])
    with pytest.raises(ConfigError, match="optimizer.learning_rate: unknown key"):
        ptlab.compose(["optimizer.learning_rate=0.1"])
