"""Find where to continue a run: the newest valid checkpoint in its folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ptlab.engine.checkpoint import CheckpointError, load_checkpoint
from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")


def resume_payload(cfg, run_dir: Path) -> tuple[dict[str, Any], dict | None] | None:
    """(last checkpoint, best weights) to continue from, or None to start fresh (``resume=auto``, nothing saved)."""
    folder = run_dir / "checkpoints"
    if cfg.resume != "auto":
        raise ConfigError(f"resume: {cfg.resume!r} is not supported yet; use resume=auto with hydra.run.dir=RUN_DIR")
    last = folder / "last.pt"
    if not last.exists():
        log.info("resume=auto: no checkpoint in %s, starting fresh", folder)
        return None
    try:
        payload = load_checkpoint(last)
    except CheckpointError as err:
        raise ConfigError(f"resume: {err}") from None
    best = None
    if (folder / "best.pt").exists():
        best = load_checkpoint(folder / "best.pt")["model"]
    log.info("resume=auto: continuing from %s", last)
    return payload, best
