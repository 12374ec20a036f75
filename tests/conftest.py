"""Shared test helpers: run ptlab in a subprocess, compose configs, read TensorBoard events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent

# Small budgets that still exercise the whole pipeline.
TINY = ["trainer.max_epochs=1", "trainer.max_steps=3", "trainer.log_every_n_steps=1", "trainer.progress=plain"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
    return env


def run_ptlab(*args: str, cwd: Path, timeout: float = 180, check: bool = False,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m ptlab ARGS`` in ``cwd``; returns the finished process (text output)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ptlab", *args], cwd=cwd, env=subprocess_env() | (env or {}),
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ptlab {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the event files under ``folder`` → [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def tensorboard_hparams(folder: Path) -> set[str]:
    """The hparams plugin tags written under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        try:
            tags |= set(acc.PluginTagToContent("hparams"))
        except KeyError:  # this file holds no hparams summary
            pass
    return tags


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: default run directories land under it (outputs/...)."""
    return tmp_path
