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


def train_here(*args: str, run_dir: Path) -> dict:
    """Train in this process (about 1 s, not a new interpreter's 7): for runs a test starts from, when the
    command under test is the one after it. The CLI adds only its own layer (Hydra's .hydra/ folder)."""
    import ptlab

    return ptlab.train(ptlab.compose(["trainer.progress=plain", *args]), run_dir=run_dir)


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def computed(metrics: dict) -> dict:
    """The metrics that a run computes, without the ones it measures (times, speed, memory): these are equal
    between two runs that train the same way."""
    from ptlab.engine.throughput import SPEED_KEYS

    return {k: v for k, v in metrics.items() if k != "train_seconds" and k not in SPEED_KEYS}


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


def run_ptlab_in_pty(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None,
                     rows: int = 40, columns: int = 100) -> tuple[int, str]:
    """``python -m ptlab ARGS`` with stdin, stdout and stderr on a real pseudo-terminal of ``rows``×``columns``.

    The pty is the child's controlling terminal, as in a user's shell (Ctrl-C written to it is a
    SIGINT). Returns the exit code and everything the terminal received (escape sequences included,
    ``\\r\\n`` line ends as the terminal driver writes them). ``TERM`` is a colour xterm and the
    variables that override Rich's detection (``COLUMNS``, ``FORCE_COLOR``, ...) are unset, so Rich
    must find the terminal and its size the way it does in a user's shell.
    On timeout the whole process group is killed and the test fails with the output so far.
    """
    import errno
    import fcntl
    import select
    import signal
    import struct
    import termios
    import time

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    overriding_detection = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")  # read by Rich
    child_env = {k: v for k, v in subprocess_env().items() if k not in overriding_detection}
    child_env |= {"TERM": "xterm-256color"} | (env or {})
    proc = subprocess.Popen([sys.executable, "-m", "ptlab", *args], cwd=cwd, env=child_env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)  # the child holds the only slave: reading the master ends (EIO) when it exits
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                text = b"".join(chunks).decode(errors="replace")
                raise AssertionError(f"ptlab {' '.join(args)}: no exit within {timeout}s under a pty; output:\n{text}")
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: every slave is closed, the child is gone
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")
