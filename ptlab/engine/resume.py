"""Where to continue a run from, and whether the new command line may change its config.

``resume=auto`` continues from the newest valid checkpoint in the run directory
(``hydra.run.dir``) or starts fresh when there is none, so a preemptible job
can be relaunched with the same command forever. ``resume=PATH`` (a run
directory or a ``.pt`` file) continues that run; the CLI points
``hydra.run.dir`` at it and replays its saved overrides.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ptlab.config import fixed_defaults
from ptlab.engine.checkpoint import CheckpointError
from ptlab.engine.checkpointer import Manifest, load_verified, newest_valid
from ptlab.engine.distributed import World
from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")

# Keys a resumed run may change: they do not alter what was already computed.
CHANGEABLE = (
    "resume", "device", "trainer.max_epochs", "trainer.max_steps", "trainer.log_every_n_steps", "trainer.progress",
    "trainer.val_every_n_epochs", "trainer.val_every_n_steps", "trainer.early_stopping.", "checkpoint.every_n_steps",
    "checkpoint.keep_last", "checkpoint.save", "sweep.", "trainer.skip_nonfinite", "trainer.detect_anomaly",
    "trainer.profile_steps", "trainer.peak_flops", "logger", "callbacks",  # a callback new to the run starts afresh
)


def resume_payload(cfg, run_dir: Path | None, world: World | None = None) -> tuple[dict[str, Any], dict | None] | None:
    """(checkpoint to continue from, best weights) or None to start fresh.

    Under torchrun every rank reads the run directory itself; the ranks then compare
    what they found, so nodes that do not share a filesystem stop with one error
    instead of silently resuming from different states.
    """
    from omegaconf import OmegaConf

    target = run_dir if cfg.resume == "auto" else Path(cfg.resume).expanduser()
    try:
        found = _find(target, auto=cfg.resume == "auto")
    except CheckpointError as err:
        found, error = None, ConfigError(f"resume: {str(err).removeprefix('ckpt: ').removeprefix('resume: ')}")
    else:
        error = None
    _check_ranks_agree(found, error, world or World())
    if error is not None:
        raise error
    if found is None:
        return None
    payload, path = found
    if not payload["optimizers"]:
        raise ConfigError(f"resume: {path} holds weights only (best.pt); resume from last.pt or a step checkpoint")
    check_config_changes(payload["config"], OmegaConf.to_container(cfg, resolve=True))
    log.info("resuming from %s (epoch %d, step %d)", path, payload["loop"]["epoch"], payload["loop"]["step"])
    saved_size, size = payload["loop"].get("world_size", 1), (world or World()).size
    if saved_size != size:
        log.warning("resuming a %d-process run with %d processes: the data order continues exactly (the global "
                    "batch is unchanged unless data.batch_size_per_device is set); random streams such as "
                    "dropout restart from rank 0's", saved_size, size)
    return payload, best_weights(path.parent)


def _find(target: Path, auto: bool) -> tuple[dict[str, Any], Path] | None:
    if target.is_file():
        return load_verified(target, Manifest(target.parent)), target
    found = newest_valid(target / "checkpoints")
    if found is None:
        if not auto:
            raise ConfigError(f"resume: {target} holds no checkpoints; give a run directory or a .pt file")
        log.info("resume=auto: no checkpoint in %s, starting fresh", target / "checkpoints")
    return found


def _check_ranks_agree(found: tuple[dict[str, Any], Path] | None, error: Exception | None, world: World) -> None:
    """Every rank of a torchrun job must resume from the same checkpoint (path and step), or none may."""
    if not world.distributed:
        return
    from ptlab.engine.distributed import gather

    mine = "error" if error is not None else None if found is None else (str(found[1]), found[0]["loop"]["step"])
    seen = gather(mine, world)
    if len(set(seen)) > 1:
        described = "; ".join(f"rank {rank}: " + ("nothing" if s is None else s if isinstance(s, str) else
                                                    f"{s[0]} (step {s[1]})") for rank, s in enumerate(seen))
        raise ConfigError(f"resume: the processes found different checkpoints ({described}). Every node must see "
                          "the same run directory: put hydra.run.dir on a filesystem all nodes share")


def best_weights(folder: Path) -> dict | None:
    """best.pt's weights: {"model"} and, with trainer.ema.decay, {"model_without_ema"}; None without a usable best.pt."""
    best = folder / "best.pt"
    if not best.exists():
        return None
    try:
        saved = load_verified(best, Manifest(folder))
        return {key: saved[key] for key in ("model", "model_without_ema") if key in saved}
    except CheckpointError as err:
        log.warning("best.pt cannot be used (%s); the best weights will be those of the next improvement", err)
        return None


def check_config_changes(saved: dict, current: dict) -> None:
    """Print every change; refuse the ones a resumed run cannot honour."""
    old, new = flatten(fixed_defaults()) | flatten(saved), flatten(current)  # keys added since: their defaults
    keys = sorted((old.keys() | new.keys()) - {"resume"})  # the resume key itself: how, not what, to run
    changes = [(key, old.get(key, "<unset>"), new.get(key, "<unset>"))
               for key in keys if old.get(key, "<unset>") != new.get(key, "<unset>")]
    refused = [c for c in changes if not c[0].startswith(CHANGEABLE)]
    for key, before, after in changes:
        log.info("resume: %s %s → %s%s", key, before, after, "  (refused)" if (key, before, after) in refused else "")
    if refused:
        listed = ", ".join(f"{k} {b} → {a}" for k, b, a in refused)
        raise ConfigError(f"resume: these changes cannot be honoured by a resumed run: {listed}. "
                          "Drop them to continue the run, or start a new run without resume")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}
