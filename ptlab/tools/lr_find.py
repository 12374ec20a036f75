"""The learning-rate range test behind ``ptlab lr-find`` (Smith, 2017; the "LR finder" of fastai).

Train for ``steps`` optimizer steps while the learning rate grows
exponentially from ``min_lr`` to ``max_lr``,

    lr_i = min_lr · (max_lr / min_lr)^(i / (steps − 1)),

and record the training loss of every step. The raw losses are noisy, so they
are smoothed with a bias-corrected exponential moving average,

    m_i = β·m_{i−1} + (1 − β)·loss_i,   smoothed_i = m_i / (1 − β^(i+1)),

and the sweep stops early once the smoothed loss exceeds ``diverge`` × its
minimum so far, or the loss is not finite. Two suggestions are read off the
curve: the learning rate where the smoothed loss falls fastest per decade
(the most negative slope against log lr before the minimum, measured across
half a decade), and the learning rate of the minimum divided by 10 (still on
the descending slope).

The sweep reuses what ``ptlab.build`` made — model, optimizer, data and the
objective's loss — and puts the model's weights, the optimizer's state and
every random generator back as they were, so a run that follows is unchanged.
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

from ptlab.config import PositiveFloat, Probability, Range, check_dataclass
from ptlab.errors import ConfigError, PtlabError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ptlab.api import Run

log = logging.getLogger("ptlab")


@dataclass
class LRFindConfig:
    """``lr_find.*`` (configs/lr_find.yaml)."""

    min_lr: PositiveFloat = 1e-7
    max_lr: PositiveFloat = 10.0
    steps: Annotated[int, Range(ge=10)] = 200  # optimizer steps, one batch each
    smoothing: Probability = 0.9  # β of the loss's moving average
    diverge: Annotated[float, Range(gt=1)] = 4.0  # stop when the smoothed loss exceeds this × its minimum


@dataclass
class RangeTest:
    """The recorded sweep and what it suggests."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped: str  # why the sweep ended
    steepest: Optional[float]  # lr of the steepest descent of the smoothed loss (None: no descent recorded)
    min_over_10: float  # lr of the smoothed loss's minimum, divided by 10

    @property
    def suggestion(self) -> float:
        return self.steepest if self.steepest is not None else self.min_over_10


def split_config(cfg: DictConfig) -> tuple[DictConfig, LRFindConfig]:
    """(the training config, the checked ``lr_find`` settings) of a composed lr-find config."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg.lr_find, resolve=True)
    check_dataclass("lr_find.", values, LRFindConfig)
    settings = LRFindConfig(**values)
    if settings.min_lr >= settings.max_lr:
        raise ConfigError(f"lr_find.min_lr: {settings.min_lr:g} is not below lr_find.max_lr={settings.max_lr:g}; "
                          "the sweep goes from min_lr up to max_lr")
    train_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "lr_find"])
    OmegaConf.set_struct(train_cfg, True)
    return train_cfg, settings


def lr_range_test(run: Run, settings: LRFindConfig) -> RangeTest:
    """Sweep the learning rate of ``run``'s optimizer; restore model, optimizer and RNG states afterwards."""
    from ptlab.engine.checkpoint import rng_state, set_rng_state

    if list(run.optimizers) != ["main"]:
        names = ", ".join(run.optimizers)
        raise PtlabError(
            f"lr-find: task {run.cfg.task} trains {len(run.optimizers)} optimizers ({names}) against each other. "
            "The range test needs one loss that falls while the model learns; a player's loss also falls when the "
            "other player gets worse, so its curve does not show a good learning rate. Compare a few instead: "
            f"ptlab train -m task={run.cfg.task} optimizer.lr=1e-4,2e-4,5e-4, then ptlab report on the sweep folder"
        )
    optimizer = run.optimizers["main"]
    saved = (copy.deepcopy(run.model.state_dict()), copy.deepcopy(optimizer.state_dict()), rng_state(),
             [(module, module.training) for module in run.model.modules()])
    try:
        return _sweep(run, settings)
    finally:
        weights, optimizer_state, rng, modes = saved
        run.model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)
        optimizer.zero_grad(set_to_none=True)
        set_rng_state(rng)
        for module, training in modes:
            module.training = training


def _sweep(run: Run, settings: LRFindConfig) -> RangeTest:
    import numpy as np
    import torch

    from ptlab.engine.precision import Precision

    optimizer, s = run.optimizers["main"], settings
    precision = Precision(run.cfg.trainer.precision, run.device)
    clip = run.cfg.trainer.grad_clip
    # Groups keep their ratios (fine-tuning's lr_mult): the first group follows the sweep.
    base = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    ratios = [b / base[0] for b in base]
    run.model.train()
    for module in run.frozen_modules:
        module.eval()
    lrs, losses, smoothed = [], [], []
    average, best, stopped = 0.0, math.inf, "reached lr_find.max_lr"
    for i, (lr, batch) in enumerate(zip(np.geomspace(s.min_lr, s.max_lr, s.steps), _endless(run.data.train))):
        for group, ratio in zip(optimizer.param_groups, ratios):
            group["lr"] = float(lr) * ratio
        with precision.autocast():
            loss, _, _ = run.objective.loss(run.model, batch)
        precision.backward(loss)
        if clip:
            precision.unscale(optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip)
        precision.step(optimizer)
        precision.update()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()  # one sync per step: whether to stop depends on it
        average = s.smoothing * average + (1 - s.smoothing) * value
        lrs.append(float(lr))
        losses.append(value)
        smoothed.append(average / (1 - s.smoothing ** (i + 1)))
        if not math.isfinite(value):
            stopped = f"the loss became {value} at lr {lr:.3g}"
            break
        best = min(best, smoothed[-1])
        if smoothed[-1] > s.diverge * best:
            stopped = f"diverged at lr {lr:.3g} (smoothed loss above {s.diverge:g}× its minimum)"
            break
    return RangeTest(lrs, losses, smoothed, stopped, *suggestions(lrs, smoothed))


def _endless(batches) -> Iterator:
    """Training batches epoch after epoch, in the order training would see them."""
    epoch = 0
    while True:
        yield from batches.batches(epoch)
        epoch += 1


def suggestions(lrs: list[float], smoothed: list[float]) -> tuple[Optional[float], float]:
    """(lr of the steepest descent before the minimum, lr of the minimum / 10) of a smoothed loss curve.

    The slope at step i is a central difference across half a decade of
    learning rates, (smoothed[i+k] − smoothed[i−k]) / (log₁₀ lr[i+k] − log₁₀ lr[i−k])
    with k steps per quarter decade, so that step-to-step noise on a flat stretch
    does not pass for a descent.
    """
    import numpy as np

    values = np.array(smoothed, dtype=float)
    values[~np.isfinite(values)] = np.inf
    x = np.log10(lrs)
    lowest = int(np.argmin(values))
    k = max(1, math.ceil(0.25 * (len(x) - 1) / max(x[-1] - x[0], 1e-12)))
    steepest = None
    if lowest > k:
        at = np.arange(k, lowest + 1)
        ahead = np.minimum(at + k, lowest)
        slope = (values[ahead] - values[at - k]) / (x[ahead] - x[at - k])
        steepest = lrs[int(at[np.argmin(slope)])]
    return steepest, lrs[lowest] / 10


def write_outputs(result: RangeTest, folder: Path, title: str) -> tuple[Path, Path]:
    """``lr_find.csv`` (step, lr, loss, smoothed_loss) and ``lr_find.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "lr_find.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "lr", "loss", "smoothed_loss"])
        for i, row in enumerate(zip(result.lrs, result.losses, result.smoothed)):
            writer.writerow([i, *(f"{v:.6g}" for v in row)])
    picture = folder / "lr_find.png"
    plot(result, picture, title)
    return table, picture


def plot(result: RangeTest, path: Path, title: str) -> None:
    """Loss and smoothed loss against the learning rate (log axis), with both suggestions marked."""
    from ptlab.tools.figures import new_figure

    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses, color="0.75", linewidth=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", linewidth=2, label="smoothed loss")
    marks = [(result.steepest, "C3", "--", "steepest descent"), (result.min_over_10, "C2", ":", "minimum / 10")]
    for lr, color, style, label in marks:
        if lr is not None:
            ax.axvline(lr, color=color, linestyle=style, label=f"{label}: {lr:.2g}")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:
        low, high = min(finite), max(finite)
        ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low) + 1e-12)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120)


def launch(args: list[str], preflight: bool) -> int:
    """``ptlab lr-find ARGS``: check the config (unless Hydra only prints something), then run the job in Hydra."""
    import hydra

    from ptlab.hydra_support import register_resolvers
    from ptlab.paths import CONFIG_DIR

    if preflight:
        from ptlab.api import check, compose
        from ptlab.hydra_support import first_of_each_sweep

        try:
            overrides = first_of_each_sweep([a for a in args if not a.startswith("-")])
        except Exception as err:  # Hydra's override grammar errors
            raise PtlabError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
        check(split_config(compose(overrides, config_name="lr_find"))[0])
    register_resolvers()
    # Given here rather than in configs/lr_find.yaml: merging a config over the train config's folder
    # would resolve (and so create) that folder too. A folder the user names wins.
    folders = [f"hydra.{kind}.dir='${{ptlab.unique_dir:outputs/${{task}}/lr_find/{sub}${{now:%Y-%m-%d_%H-%M-%S}}}}'"
               for kind, sub in (("run", ""), ("sweep", "multirun/"))
               if not any(a.startswith(f"hydra.{kind}.dir=") for a in args)]
    sys.argv = [sys.argv[0], *args, *folders]
    hydra.main(config_path=str(CONFIG_DIR), config_name="lr_find", version_base="1.3")(_job)()
    return 0


def _job(cfg: DictConfig) -> None:
    """What Hydra runs: the range test, written into Hydra's output directory."""
    from hydra.core.hydra_config import HydraConfig

    from ptlab.api import build

    folder = Path(HydraConfig.get().runtime.output_dir)
    try:
        train_cfg, settings = split_config(cfg)
        run = build(train_cfg)
        result = lr_range_test(run, settings)
    except PtlabError as err:
        print(f"ptlab: error: {err}", file=sys.stderr)
        if folder.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in folder.iterdir()):
            shutil.rmtree(folder)  # nothing was measured: leave no folder behind
        sys.exit(2)
    title = f"LR range test: task {cfg.task}, {cfg.model.get('name', 'model')}, {cfg.optimizer.get('name', '')}"
    table, picture = write_outputs(result, folder, title)
    log.info("lr-find: %d steps from %.3g to %.3g; %s", len(result.lrs), result.lrs[0], result.lrs[-1], result.stopped)
    if result.steepest is not None:
        log.info("suggested lr %.3g (steepest descent of the smoothed loss)", result.steepest)
    log.info("%s lr %.3g (the smoothed loss is lowest at lr %.3g; divided by 10)",
             "suggested" if result.steepest is None else "also consider", result.min_over_10, result.min_over_10 * 10)
    log.info("use it with: ptlab train task=%s optimizer.lr=%.2g", cfg.task, result.suggestion)
    log.info("written: %s, %s", _shown(picture), _shown(table))


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
