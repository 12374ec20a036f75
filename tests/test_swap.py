"""Any part can be swapped: a task's settings follow the option they were written for.

A task (configs/task/NAME.yaml) picks an option per group; what it sets for that option lives in
configs/task_options/GROUP/TASK_OPTION.yaml, which train.yaml's defaults list reads only while that
option is chosen. Swapping the option gives the new option's own defaults; the only refusals left are
real incompatibilities, each one ConfigError line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from conftest import run_ptlab
from ptlab import api, catalog
from ptlab.errors import ConfigError
from ptlab.models import check_model_fits
from ptlab.paths import CONFIG_DIR

TASKS = sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml"))
TASK_OPTIONS = CONFIG_DIR / "task_options"
PICKED_GROUPS = ("objective", "data", "model", "optimizer", "scheduler")

# The models each task's default data and objective can train: everything else is refused.
FITS = {
    "cnn": {"resnet18", "simple_cnn"},
    "gan": {"dcgan", "mlp_gan"},
    "linreg": {"linear_regression"},
    "logreg": {"logistic_regression"},
    "rnn": {"rnn", "transformer"},
    "transformer": {"rnn", "transformer"},
    "recsys": {"mf", "neumf"},
    "translate": {"rnn_seq2seq", "transformer_seq2seq"},
}
OFFLINE_DATA = ("breast_cancer", "diabetes", "digits", "number_words", "planted", "python_docs")  # no download, no path to give


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def picks(task: str) -> dict[str, str]:
    """``group → option`` of a task file's ``override /GROUP: OPTION`` lines."""
    node = yaml.safe_load((CONFIG_DIR / "task" / f"{task}.yaml").read_text())
    return {key.split("/")[-1]: value for entry in node["defaults"] for key, value in entry.items()}


def own_settings(group: str, option: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR / group / f"{option}.yaml").read_text())


def task_settings(task: str, group: str, option: str) -> dict[str, Any]:
    """What ``task`` sets for ``group=option`` ({} if nothing)."""
    path = TASK_OPTIONS / group / f"{task}_{option}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def expected(task: str, group: str, option: str) -> dict[str, Any]:
    return own_settings(group, option) | task_settings(task, group, option)


def test_task_options_are_named_for_a_task_and_an_option_of_their_group() -> None:
    """Each file is GROUP/TASK_OPTION.yaml for an existing task and option, lands in GROUP, and sets only keys
    the option has; train.yaml reads every such group."""
    entries = yaml.safe_load((CONFIG_DIR / "train.yaml").read_text())["defaults"]
    read = {key for entry in entries if isinstance(entry, dict) for key, value in entry.items()
            if key.startswith("optional task_options/") and value == f"${{task}}_${{oc.select:{key.rpartition('/')[2]},none}}"}
    assert read == {f"optional task_options/{group}" for group in PICKED_GROUPS}
    files = sorted(TASK_OPTIONS.glob("*/*.yaml"))
    assert files
    for path in files:
        group = path.parent.name
        assert group in PICKED_GROUPS, path
        names = [(task, path.stem[len(task) + 1:]) for task in TASKS if path.stem.startswith(f"{task}_")]
        assert len(names) == 1 and names[0][1] in options(group), f"{path}: not TASK_OPTION of a task and a {group}"
        task, option = names[0]
        if group == "objective" and path.read_text().startswith("# @package _global_\n"):
            # an objective decides which metrics exist, so it may set the monitored one: nothing else
            settings = task_settings(task, group, option)
            assert set(settings) == {"checkpoint"} and set(settings["checkpoint"]) <= {"monitor", "mode"}, path
            continue
        assert path.read_text().startswith(f"# @package {group}\n"), path
        assert set(task_settings(task, group, option)) <= set(own_settings(group, option)) - {"name"}, path


@pytest.mark.parametrize("task", TASKS)
def test_task_files_pick_options_and_say_what_they_set_for_them(task: str) -> None:
    """Beside each pick a task file names the task_options file and its values, exactly as that file holds them
    (that it sets no key of an option group itself: tests/test_config.py)."""
    text = (CONFIG_DIR / "task" / f"{task}.yaml").read_text()
    for group, option in picks(task).items():
        line = next(line for line in text.splitlines() if re.match(rf"\s*- override /{group}: {option}\b", line))
        settings = task_settings(task, group, option)
        note = re.search(r"# \+ (task_options/\S+\.yaml): (.*)$", line)
        if not settings:
            assert note is None, line
            continue
        assert note is not None, f"{task}.yaml: name task_options/{group}/{task}_{option}.yaml beside the pick"
        assert note.group(1) == f"task_options/{group}/{task}_{option}.yaml"
        assert note.group(2) == ", ".join(f"{key} {value}" for key, value in settings.items())


@pytest.mark.parametrize("task", TASKS)
def test_a_task_keeps_its_settings_for_the_options_it_picks(task: str) -> None:
    cfg = api.compose([f"task={task}"])
    for group, option in picks(task).items():
        assert OmegaConf.to_container(cfg[group]) == expected(task, group, option), group


def test_the_tuned_values_are_the_ones_the_tasks_were_measured_with() -> None:
    gan, transformer = api.compose(["task=gan"]), api.compose(["task=transformer"])
    assert (gan.optimizer.lr, gan.optimizer.beta1, gan.data.batch_size) == (0.001, 0.5, 32)
    assert (transformer.optimizer.lr, transformer.optimizer.beta2) == (0.003, 0.99)
    assert (transformer.scheduler.warmup_steps, transformer.scheduler.min_lr_ratio) == (20, 0.1)
    assert api.compose(["task=linreg"]).optimizer.lr == 0.05
    assert api.compose(["task=rnn"]).optimizer.lr == 0.002
    assert api.compose(["task=linreg"]).objective.baseline == "lstsq"
    assert api.compose(["task=logreg"]).objective.baseline == "logistic"


SWAPS = [(task, group, option) for group in ("optimizer", "scheduler") for task in TASKS for option in options(group)]


@pytest.mark.parametrize("task, group, option", SWAPS, ids=[f"{t}-{g}={o}" for t, g, o in SWAPS])
def test_every_task_takes_every_optimizer_and_scheduler(task: str, group: str, option: str) -> None:
    """The option's own defaults (plus what this task sets for this very option), checked, and built."""
    cfg = api.compose([f"task={task}", f"{group}={option}"])
    api.check(cfg)
    assert OmegaConf.to_container(cfg[group]) == expected(task, group, option)
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = catalog.OPTIMIZERS.build(cfg.optimizer, "optimizer", params=params)
    catalog.SCHEDULERS.build(cfg.scheduler, "scheduler", optimizer=optimizer, total_steps=20,
                   steps_per_epoch=4)


def test_command_line_values_still_win() -> None:
    tuned = api.compose(["task=gan", "optimizer.lr=0.02"])
    assert (tuned.optimizer.lr, tuned.optimizer.beta1) == (0.02, 0.5)
    swapped = api.compose(["task=gan", "optimizer=sgd", "optimizer.lr=0.02", "optimizer.momentum=0.9"])
    assert (swapped.optimizer.name, swapped.optimizer.lr, swapped.optimizer.momentum) == ("sgd", 0.02, 0.9)
    assert api.compose(["task=transformer", "scheduler=step", "scheduler.warmup_steps=5"]).scheduler.warmup_steps == 5


_DATA: dict[str, tuple[Any, dict[str, Any]]] = {}


def default_data(task: str) -> tuple[Any, dict[str, Any]]:
    """(the task's data section, the ``info`` its data builder returns), from one real build per task."""
    if task not in _DATA:
        cfg = api.compose([f"task={task}", "device=cpu"])
        _DATA[task] = (cfg.data, api.build(cfg).data.info)
    return _DATA[task]


MODEL_SWAPS = [(task, model) for task in TASKS for model in options("model")]


@pytest.mark.parametrize("task, model", MODEL_SWAPS, ids=[f"{t}-model={m}" for t, m in MODEL_SWAPS])
def test_every_task_with_every_model_builds_or_says_why_not(task: str, model: str) -> None:
    """Checked against the ``info`` the task's real data gives (the data section is the same whatever the
    model, so it is built once per task): a model that fits is built, any other is one ConfigError line."""
    cfg = api.compose([f"task={task}", f"model={model}", "device=cpu"])
    api.check(cfg)
    data, info = default_data(task)
    assert cfg.data == data
    objective = api.build_objective(cfg)
    if model in FITS[task]:
        check_model_fits(cfg, objective, info)
        assert isinstance(catalog.MODELS.build(cfg.model, "model", **info), torch.nn.Module)
    else:
        with pytest.raises(ConfigError) as err:
            check_model_fits(cfg, objective, info)
        message = str(err.value)
        assert message.startswith(f"model={model} does not fit data={data.name}: ") and "\n" not in message
        named = {hint.removeprefix("model=") for hint in message.rpartition("; use ")[2].split(" or ")}
        assert named & set(options("model")) == FITS[task]  # models registered by other tests may fit as well


@pytest.mark.parametrize("task", TASKS)
def test_every_task_on_every_offline_dataset_builds_or_says_why_not(task: str) -> None:
    for data in OFFLINE_DATA:
        cfg = api.compose([f"task={task}", f"data={data}", "device=cpu"])
        if data == picks(task)["data"]:
            api.build(cfg)
            continue
        with pytest.raises(ConfigError) as err:
            api.build(cfg)  # check() first: a text objective refuses non-text data there, the rest while building
        assert "\n" not in str(err.value), err.value


@pytest.mark.parametrize("overrides", [["task=gan", "optimizer=sgd"], ["task=transformer", "scheduler=constant"]])
def test_swapped_options_train(overrides: list[str]) -> None:
    metrics = api.train(api.compose([*overrides, "debug=fast", "device=cpu", "trainer.progress=plain"]))
    assert metrics["step"] == 1


def test_a_model_that_does_not_fit_is_refused_before_training(workdir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^model=dcgan does not fit data=digits: it is made for generation, not "
                                          r"classification \(objective=classification\); use model=resnet18 or "
                                          r"model=simple_cnn$"):
        api.build(api.compose(["task=cnn", "model=dcgan", "device=cpu"]))
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=logreg", "model=simple_cnn", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("ptlab: error: model=simple_cnn does not fit data=breast_cancer: it needs "
                                   "in_channels, image_size from the data, which gives in_features, num_classes; "
                                   "use model=logistic_regression")
    assert not run_dir.exists()
