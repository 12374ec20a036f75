"""``ptlab`` subcommands and the error boundary: a PtlabError becomes one message and exit code 2.

``ptlab train`` hands its arguments to Hydra unchanged, so overrides, ``-m``,
``--cfg``, ``--help``, ``hydra.run.dir=`` and shell completion all work. Before
Hydra creates a run directory, the config is composed and validated once, so
bad input never leaves a half-made run behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from ptlab.errors import PtlabError

USAGE = """\
usage: ptlab COMMAND [key=value ...]

commands:
  train [task=NAME] [device=auto|cpu|cuda|cuda:N|mps] [seed=N] [key=value ...] [-m]
                      train a task (Hydra overrides; `ptlab train --help` lists the config groups)
  eval ckpt=PATH [split=test|val] [device=...] [out=FILE] [data.key=value ...]
                      evaluate a checkpoint on its data and print the metrics
  list [GROUP]        the registered models, datasets, optimizers, schedulers, objectives, metrics

tasks: linreg, logreg, cnn      examples: ptlab train task=logreg optimizer.lr=0.1
                                          ptlab train -m task=logreg seed=0,1,2
"""

COMMANDS = ("train", "eval", "list")
HYDRA_INFO_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "-sc", "--shell-completion", "--version")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-sc"], ["--shell-completion"]):
        return _complete(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return train_command(rest)
        if command == "eval":
            return eval_command(rest)
        if command == "list":
            return list_command(rest)
        from ptlab.registry import did_you_mean

        raise PtlabError(f"unknown command {command!r}. {did_you_mean(command, COMMANDS)}Commands: {', '.join(COMMANDS)}.")
    except PtlabError as err:
        print(f"ptlab: error: {err}", file=sys.stderr)
        return 2


def train_command(args: list[str]) -> int:
    from ptlab.paths import CONFIG_DIR

    args = _resume_args(args)
    if not any(a in HYDRA_INFO_FLAGS or a.startswith("--cfg") or a == "-c" for a in args):
        _preflight(args)
    import hydra

    from ptlab.hydra_support import register_resolvers

    register_resolvers()
    sys.argv = [sys.argv[0], *args]
    hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")(_train_job)()
    return 0


def _resume_args(args: list[str]) -> list[str]:
    """``resume=PATH``: continue that run in its own directory, with its saved overrides under the new ones."""
    import yaml

    value = next((a.partition("=")[2] for a in reversed(args) if a.startswith("resume=")), None)
    if value in (None, "auto", "null"):
        return args
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise PtlabError(f"resume: {value} does not exist; give a run directory or a checkpoint (.pt) in one")
    run_dir = path if path.is_dir() else path.parent.parent
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise PtlabError(f"resume: {run_dir} has no .hydra/overrides.yaml; give the directory of a ptlab run")

    def key(override: str) -> str:
        return override.partition("=")[0].lstrip("+~")

    new = [a for a in args if not a.startswith("resume=")]
    given = {key(a) for a in new if not a.startswith("-")}
    previous = [o for o in yaml.safe_load(saved.read_text()) or []
                if key(o) not in given and key(o) != "resume" and not key(o).startswith("hydra.")]
    return [*previous, *new, f"resume={path}", f"hydra.run.dir={run_dir}"]


def _preflight(args: list[str]) -> None:
    """Compose and validate (the first job of a sweep) before Hydra makes any folder."""
    from ptlab.api import check, compose
    from ptlab.hydra_support import first_of_each_sweep

    overrides = [a for a in args if not a.startswith("-")]
    try:
        overrides = first_of_each_sweep(overrides)
    except Exception as err:  # Hydra's override grammar errors
        raise PtlabError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
    check(compose(overrides))


def _train_job(cfg) -> float | None:
    """What Hydra runs for each job: train into Hydra's output directory."""
    from hydra.core.hydra_config import HydraConfig

    from ptlab.api import train
    from ptlab.engine.trainer import TrainingInterrupted

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = train(cfg, run_dir=run_dir)
    except PtlabError as err:
        print(f"ptlab: error: {err}", file=sys.stderr)
        _remove_if_unstarted(run_dir)
        sys.exit(2)
    except TrainingInterrupted as err:
        print(f"ptlab: {err}; resume with resume=auto hydra.run.dir={HydraConfig.get().runtime.output_dir}",
              file=sys.stderr)
        sys.exit(err.exit_code)
    value = metrics.get(cfg.checkpoint.monitor)  # the validation value sweepers optimize
    return value if isinstance(value, float) else None


def _remove_if_unstarted(run_dir: Path) -> None:
    """A run refused before training (e.g. a CSV column that is not there) leaves no folder behind."""
    import shutil

    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir)


def eval_command(args: list[str]) -> int:
    from ptlab.api import evaluate
    from ptlab.logging.console import print_metrics_table
    from ptlab.logging.metrics_file import write_json

    options = {"ckpt": None, "split": "test", "device": None, "out": None}
    overrides = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise PtlabError(f"{arg!r}: expected key=value, e.g. ckpt=outputs/cnn/RUN/checkpoints/best.pt")
        if key in options:
            options[key] = value
        else:
            overrides.append(arg)
    if not options["ckpt"]:
        raise PtlabError("ckpt: required; pass ckpt=RUN_DIR/checkpoints/best.pt")
    metrics = evaluate(options["ckpt"], options["split"], overrides, options["device"])
    ckpt = Path(options["ckpt"]).expanduser()
    out = Path(options["out"]) if options["out"] else ckpt.parent.parent / f"eval_{options['split']}.json"
    write_json(metrics, out)
    print_metrics_table(metrics, title=f"{options['split']} metrics")
    print(f"written to {out}")
    return 0


def list_command(args: list[str]) -> int:
    from rich.table import Table

    from ptlab.catalog import REGISTRIES
    from ptlab.logging.console import console
    from ptlab.registry import did_you_mean

    groups = REGISTRIES
    if args:
        wanted = args[0] if args[0] in REGISTRIES else f"{args[0]}s"
        if wanted not in REGISTRIES:
            raise PtlabError(f"list: unknown group {args[0]!r}. {did_you_mean(args[0], REGISTRIES)}"
                             f"Groups: {', '.join(REGISTRIES)}.")
        groups = {wanted: REGISTRIES[wanted]}
    for group, registry in groups.items():
        table = Table(title=group, title_justify="left")
        for column in ("name", "description", "config keys"):
            table.add_column(column)
        for row in registry.describe():
            table.add_row(*row)
        console().print(table)
    return 0


def _complete(argv: list[str]) -> int:
    """Shell completion: ``ptlab TAB`` offers commands; after ``ptlab train`` Hydra completes overrides."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if any(a.startswith("query") for a in argv) and (len(words) < 2 or (len(words) == 2 and not line.endswith(" "))):
        print(" ".join(COMMANDS))
        return 0
    if len(words) >= 2 and words[1] in COMMANDS:
        os.environ["COMP_LINE"] = line.replace(f" {words[1]}", "", 1)
    return train_command(argv)
