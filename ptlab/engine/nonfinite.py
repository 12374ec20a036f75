"""What the trainer says when a loss or the weights stop being finite: the step, its loss terms, what to try."""

from __future__ import annotations

import logging
from pathlib import Path

from ptlab.errors import PtlabError

log = logging.getLogger("ptlab")
SKIPS_SHOWN = 3  # trainer.skip_nonfinite: the first skipped steps are each a warning, the rest only counted


class NonFiniteLoss(PtlabError):
    """The training loss became NaN or infinite."""


def loss_error(found: tuple[int, dict[str, float]] | None, step: int, advice: str) -> NonFiniteLoss:
    """The first step whose losses are not finite (``found``: its step and every loss term), or, when this
    process saw none (under torchrun the bad loss may have been another rank's), the step it stopped at."""
    if found is None:
        return NonFiniteLoss(f"non-finite loss on another process before step {step}; {advice}")
    bad_step, values = found
    terms = ", ".join(f"train/{key}={value:.6g}" for key, value in values.items())
    return NonFiniteLoss(f"non-finite loss at step {bad_step} ({terms}); {advice}")


def weights_error(step: int, advice: str) -> NonFiniteLoss:
    return NonFiniteLoss(f"the weights are NaN or infinite after step {step} (a non-finite gradient); {advice}")


def advice(last_checkpoint: tuple[Path, int] | None, checkpoints_on: bool, detect_anomaly: bool) -> str:
    """Where the last good state is, and the settings that help."""
    if last_checkpoint is not None:
        path, step = last_checkpoint
        kept = f"the last good checkpoint is {path} (step {step})"
    elif checkpoints_on:
        kept = "no checkpoint was written before it"
    else:
        kept = "checkpoints are off (checkpoint.save=false)"
    find = "" if detect_anomaly else "find the operation with debug=anomaly, "
    return f"{kept}. Lower optimizer.lr, set trainer.grad_clip, {find}or skip such steps with trainer.skip_nonfinite=true"


def warn_skipped(step: int, skipped_steps: int, optimizers: set[str]) -> None:
    """A step skipped for a non-finite loss or gradient (trainer.skip_nonfinite): warn about the first few."""
    if skipped_steps <= SKIPS_SHOWN:
        more = " (further skips are only counted: train/skipped_steps)" if skipped_steps == SKIPS_SHOWN else ""
        log.warning("step %d: non-finite loss or gradient (%s); the update was skipped%s", step,
                    ", ".join(sorted(optimizers)), more)
