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
       ptlab --version

commands:
  train [task=NAME] [device=auto|cpu|cuda|cuda:N|mps] [seed=N] [key=value ...] [-m]
                      train a task (Hydra overrides; `ptlab train --help` lists the config groups)
  eval ckpt=PATH [split=test|val] [device=...] [out=FILE] [data.key=value ...]
                      evaluate a checkpoint on its data and print the metrics
  list [GROUP]        the tasks (default model and data), then the registered models, datasets,
                      optimizers, schedulers, objectives, metrics, loggers; GROUP: one of them, e.g. tasks
  generate ckpt=PATH [n=64] [out=grid.png] [seed=0] [device=cpu]
                      a grid of samples from a GAN checkpoint (same seed, same images)
  generate ckpt=PATH [prompt=TEXT] [max_new_tokens=200] [temperature=1.0] [top_k=K] [seed=0] [device=cpu]
                      text from a language-model checkpoint (task=rnn, transformer; same seed, same text)
  recommend ckpt=PATH user=ID [k=10] [format=table|json] [device=cpu]
                      a recommender's top-k items for one user (task=recsys), without those the user has
  predict ckpt=PATH input=FILE out=FILE [column=NAME] [device=cpu]
                      a data=csv or text classifier's predictions: new columns of a CSV, or a .txt's lines
  translate ckpt=PATH text=TEXT|input=FILE [beam=1] [length_penalty=0.6] [device=cpu]
                      a seq2seq checkpoint's translations (task=translate), one a line
  export ckpt=PATH format=pt2|onnx [out=FILE]
                      the model (a GAN's generator) as a torch.export or ONNX program with a dynamic batch,
                      checked against PyTorch; export.json (and tokenizer.json for text) beside it
  lr-find [task=NAME] [lr_find.min_lr=1e-7] [lr_find.max_lr=10] [lr_find.steps=200] [key=value ...]
                      learning-rate range test: a suggested lr, lr_find.png and lr_find.csv
  report RUN_DIR [RUN_DIR ...] [out=DIR]
                      training curves, final metrics and sweep plots as PNGs and report.md

tasks: linreg, logreg, cnn, rnn, transformer, gan, recsys, translate
examples: ptlab train task=logreg optimizer.lr=0.1
          ptlab train -m task=logreg seed=0,1,2
"""

COMMANDS = ("train", "eval", "list", "generate", "recommend", "predict", "translate", "export", "lr-find", "report")
HYDRA_INFO_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "-sc", "--shell-completion", "--version")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-sc"], ["--shell-completion"]):
        return _complete(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] == "--version":  # `ptlab train --version` stays Hydra's
        from ptlab import __version__

        print(f"ptlab {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    from ptlab import checkpoint_commands as checkpoints

    handlers = {"train": train_command, "eval": checkpoints.eval_command, "list": list_command,
                "generate": checkpoints.generate_command, "recommend": checkpoints.recommend_command,
                "predict": checkpoints.predict_command, "translate": checkpoints.translate_command,
                "export": checkpoints.export_command,
                "lr-find": lr_find_command, "report": report_command}
    try:
        if command in handlers:
            return handlers[command](rest)
        from ptlab.registry import did_you_mean

        raise PtlabError(f"unknown command {command!r}. {did_you_mean(command, COMMANDS)}Commands: {', '.join(COMMANDS)}.")
    except PtlabError as err:
        print(f"ptlab: error: {err}", file=sys.stderr)
        return 2


def train_command(args: list[str]) -> int:
    from ptlab.paths import CONFIG_DIR
    from ptlab.sweep.dirs import with_sweep_dir

    args = _resume_args(args)
    if not any(a in HYDRA_INFO_FLAGS or a.startswith("--cfg") or a == "-c" for a in args):
        cfg = _preflight(args)
        args = _distributed_args(args, cfg)
        args = with_sweep_dir(args, cfg.task)  # -m: a folder named by the command, so a re-run continues it
    import hydra

    from ptlab.hydra_support import register_resolvers

    register_resolvers()
    sys.argv = [sys.argv[0], *args]
    hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")(_train_job)()
    return 0


def _resume_args(args: list[str]) -> list[str]:
    """``resume=PATH``: continue that run in its own directory, with its saved overrides under the new ones."""
    import yaml

    from ptlab.overrides import Override

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
        return Override.parse(override).key

    new = [a for a in args if not a.startswith("resume=")]
    given = {key(a) for a in new if not a.startswith("-")}
    previous = [o for o in yaml.safe_load(saved.read_text()) or []
                if key(o) not in given and key(o) != "resume" and not key(o).startswith("hydra.")]
    return [*previous, *new, f"resume={path}", f"hydra.run.dir={run_dir}"]


def _preflight(args: list[str]):
    """Compose and validate (the first job of a sweep) before Hydra makes any folder, and check that it can make
    the run folder (``hydra.run.dir``, or ``hydra.sweep.dir`` for ``-m``)."""
    from ptlab.api import check
    from ptlab.hydra_support import check_can_make_dir, check_group_options, compose_for_launch, first_of_each_sweep
    from ptlab.paths import CONFIG_DIR
    from ptlab.sweep.dirs import MULTIRUN_FLAGS
    from ptlab.sweep.job import check_objective

    overrides = [a for a in args if not a.startswith("-")]
    check_group_options(CONFIG_DIR, overrides)  # every value of a sweep, not only the first
    try:
        overrides = first_of_each_sweep(overrides)
    except Exception as err:  # Hydra's override grammar errors
        raise PtlabError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
    multirun = any(a in MULTIRUN_FLAGS for a in args)
    cfg, folder = compose_for_launch(CONFIG_DIR, overrides, multirun)
    check(cfg)
    check_objective(cfg)
    if folder is not None:
        check_can_make_dir(folder, "hydra.sweep.dir" if multirun else "hydra.run.dir")
    return cfg


def _distributed_args(args: list[str], cfg) -> list[str]:
    """Under torchrun: join the process group and make every rank use rank 0's run directory.

    Rank 0 claims the directory (the same naming as a single run) and broadcasts
    it; the other ranks write neither .hydra/ nor train.log.
    """
    from ptlab.engine.device import resolve_device
    from ptlab.engine.distributed import broadcast, join, world_from_env

    world = world_from_env()
    if not world.distributed:
        return args
    if "-m" in args or "--multirun" in args:
        raise PtlabError("-m: a sweep cannot run inside torchrun; launch one torchrun per job instead")
    join(world, resolve_device(cfg.device).type)
    given = next((a.partition("=")[2] for a in reversed(args) if a.startswith("hydra.run.dir=")), None)
    if world.is_main and given is None:
        from ptlab.hydra_support import claim_run_dir
        from ptlab.paths import CONFIG_DIR

        given = claim_run_dir(CONFIG_DIR, [a for a in args if not a.startswith("-")])
    run_dir = broadcast(given, world)
    extra = [] if world.is_main else ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return [*args, f"hydra.run.dir={run_dir}", *extra]


def _train_job(cfg) -> float | None:
    """What Hydra runs for each job: train into Hydra's output directory; return sweep.objective's value."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ptlab.api import train
    from ptlab.engine.trainer import TrainingInterrupted
    from ptlab.sweep.job import objective_value, run_sweep_job

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return run_sweep_job(cfg, HydraConfig.get(), Path(HydraConfig.get().runtime.output_dir))

    from ptlab.engine.distributed import leave

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = train(cfg, run_dir=run_dir)
        leave()  # after train() returned: the DDP model, optimizers and loaders are released
    except PtlabError as err:
        print(f"ptlab: error: {err}", file=sys.stderr)
        _remove_if_unstarted(run_dir)
        sys.exit(2)
    except TrainingInterrupted as err:
        print(f"ptlab: {err}; resume with resume=auto hydra.run.dir={HydraConfig.get().runtime.output_dir}",
              file=sys.stderr)
        sys.exit(err.exit_code)
    return objective_value(metrics, cfg.sweep.objective)


def _remove_if_unstarted(run_dir: Path) -> None:
    """A run refused before training (e.g. a CSV column that is not there) leaves no folder behind."""
    import shutil

    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir)
        here = Path.cwd().resolve()
        for parent in run_dir.resolve().parents:  # outputs/<task>/ made for this run alone goes too
            if parent == here or here not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


def lr_find_command(args: list[str]) -> int:
    """``ptlab lr-find``: the learning-rate range test, run through Hydra like ``train`` (see ptlab/tools/lr_find.py)."""
    from ptlab.tools.lr_find import launch

    return launch(args, preflight=not any(a in HYDRA_INFO_FLAGS or a.startswith("--cfg") or a == "-c" for a in args))


def report_command(args: list[str]) -> int:
    """``ptlab report RUN_DIR... [out=DIR]``: pictures and report.md from finished runs (see ptlab/tools/report.py)."""
    from ptlab.tools.report import write_report

    folders = [a for a in args if not a.startswith("out=")]
    out = next((a.partition("=")[2] for a in reversed(args) if a.startswith("out=")), None)
    if not folders:
        raise PtlabError("report: give one or more run directories (or sweep folders), e.g. ptlab report outputs/cnn/RUN")
    print(f"written to {write_report([Path(f) for f in folders], Path(out) if out else None)}")
    return 0


def list_command(args: list[str]) -> int:
    """``ptlab list [GROUP]``: the tasks, then every registry; read from configs and source, torch not imported."""
    from rich.table import Table
    from rich.text import Text

    from ptlab.catalog import REGISTRIES, tasks
    from ptlab.logging.console import console
    from ptlab.paths import CONFIG_DIR
    from ptlab.registry import did_you_mean

    groups = ["tasks", *REGISTRIES]
    if args:
        wanted = args[0] if args[0] in groups else f"{args[0]}s"
        if wanted not in groups:
            raise PtlabError(f"list: unknown group {args[0]!r}. {did_you_mean(args[0], groups)}"
                             f"Groups: {', '.join(groups)}.")
        groups = [wanted]
    for group in groups:
        table = Table(title=group, title_justify="left")
        if group == "tasks":
            columns, rows = ("name", "description", "model", "data"), tasks(CONFIG_DIR)
        else:
            columns, rows = ("name", "description", "config keys"), REGISTRIES[group].describe()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*map(Text, row))  # as written: a formula's [brackets] are not Rich markup
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
