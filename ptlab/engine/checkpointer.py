"""The checkpoints folder of a run: when files are written, which are complete, which to resume from.

    checkpoints/
      last.pt               the newest state (every_n_steps, each epoch end, on SIGTERM/SIGINT, at the end)
      previous.pt           the state before it (checkpoint.keep_last=0, the default)
      step-00000120.pt      the newest ``keep_last`` step checkpoints (keep_last=K; last.pt is a copy of the newest)
      best.pt               the best weights by checkpoint.monitor
      manifest.json         size and SHA-256 of every file as it was completely written

Every file is a file of its own (no hard links), so damage written into one
in place never reaches another: a resume falls back to the next newest valid
checkpoint (previous.pt or a step file). A file is complete when its size and
hash match its manifest entry; a file without a matching entry (the run died
between writing it and the manifest) is checked by loading it. Older
checkpoints are replaced or pruned only after the new one is on disk, and
nothing is ever deleted because it looks damaged: a damaged last.pt is kept
as ``damaged-last-<time>.pt`` for inspection.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.atomic import TEMP_SUFFIX, fsync_dir, read_json, write_atomic, write_json
from ptlab.engine.callbacks import Callback
from ptlab.engine.checkpoint import CheckpointError, load_checkpoint, save_atomic

if TYPE_CHECKING:
    from ptlab.config import CheckpointConfig
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")

STEP_FILE = re.compile(r"step-(\d+)\.pt")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """``manifest.json``: what each checkpoint file looked like when it was completely written."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "manifest.json"
        saved = read_json(self.path)
        files = saved.get("files") if isinstance(saved, dict) else None
        self.entries: dict[str, dict[str, Any]] = files if isinstance(files, dict) else {}

    def record(self, path: Path, step: int) -> None:
        self.entries[path.name] = {"step": step, "size": path.stat().st_size, "sha256": sha256(path)}
        self._write()

    def forget(self, names: list[str]) -> None:
        for name in names:
            self.entries.pop(name, None)
        self._write()

    def rename(self, old: str, new: str) -> None:
        """``old`` was moved to ``new`` (its bytes, so its entry, are the same)."""
        self.entries.pop(new, None)
        if old in self.entries:
            self.entries[new] = self.entries.pop(old)
        self._write()

    def _write(self) -> None:
        write_json(self.path, {"format": 1, "files": self.entries})

    def matches(self, path: Path) -> bool:
        entry = self.entries.get(path.name)
        return bool(entry) and path.is_file() and path.stat().st_size == entry["size"] and sha256(path) == entry["sha256"]


def load_verified(path: Path, manifest: Manifest) -> dict[str, Any]:
    """Load ``path`` and, when the manifest recorded this write, check its size and SHA-256 too."""
    payload = load_checkpoint(path)
    entry = manifest.entries.get(path.name)
    if entry and entry["step"] == payload["loop"]["step"] and not manifest.matches(path):
        raise CheckpointError(f"{path.name} does not match its SHA-256 in the manifest (damaged)")
    return payload


def resumable_files(folder: Path) -> list[Path]:
    """last.pt, step checkpoints and previous.pt, newest first by the step in their name or manifest entry."""
    manifest = Manifest(folder)
    unknown_step = {"last.pt": 1 << 62, "previous.pt": -1}  # no manifest entry: last.pt is tried first, previous last

    def newness(path: Path) -> tuple[int, int]:
        match = STEP_FILE.fullmatch(path.name)
        if match:
            return int(match.group(1)), 1
        step = manifest.entries.get(path.name, {}).get("step", unknown_step[path.name])
        return step, 2 if path.name == "last.pt" else 0  # among equal steps: last.pt, then step files, then previous

    files = [p for p in folder.glob("*.pt") if p.name in unknown_step or STEP_FILE.fullmatch(p.name)]
    return sorted(files, key=newness, reverse=True)


def newest_valid(folder: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest complete checkpoint to resume from; None if the folder holds none at all."""
    files = resumable_files(folder) if folder.is_dir() else []
    if not files:
        return None
    manifest = Manifest(folder)
    damaged = []
    for path in files:
        try:
            payload = load_verified(path, manifest)
        except CheckpointError as err:
            damaged.append(f"{path.name}: {str(err).removeprefix('ckpt: ')}")
            continue
        if damaged:
            log.warning("skipped damaged checkpoints (%s); resuming from %s", "; ".join(damaged), path)
        return payload, path
    raise CheckpointError(f"resume: no valid checkpoint in {folder} ({'; '.join(damaged)}). Nothing was deleted; "
                          "move the folder away to start fresh")


class Checkpointer(Callback):
    """Writes last.pt, step checkpoints and best.pt at the moments the config asks for."""

    def __init__(self, folder: Path, settings: CheckpointConfig, write: bool = True) -> None:
        self.folder = folder
        self.every_n_steps = settings.every_n_steps
        self.keep_last = settings.keep_last
        self.write = write  # False on torchrun ranks other than 0: they join in making the payload, rank 0 writes
        self.saved_at: tuple[int, int] | None = None  # (step, epoch) of the newest last.pt

    def on_fit_start(self, trainer: Trainer) -> None:
        if not self.write:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f".*{TEMP_SUFFIX}"):  # left by a run killed mid-save; never a complete file
            stale.unlink()
        self.manifest = Manifest(self.folder)
        self._last_is_valid = self._loads(self.folder / "last.pt")

    def _loads(self, path: Path) -> bool:
        """Whether ``path`` is absent or a complete checkpoint (it is checked once, when the run starts)."""
        try:
            return not path.exists() or bool(load_verified(path, self.manifest))
        except CheckpointError:
            return False

    def save_last(self, trainer: Trainer) -> None:
        step = trainer.state.step
        if self.saved_at == (step, trainer.state.epoch):
            return
        trainer.ensure_finite()  # never replace a good last.pt with weights a NaN step produced
        payload = trainer.checkpoint()  # on every rank: it gathers their random states
        self.saved_at = (step, trainer.state.epoch)
        if not self.write:
            return
        last = self.folder / "last.pt"
        self._set_aside_damaged(last)
        if self.keep_last:
            step_file = self.folder / f"step-{step:08d}.pt"
            save_atomic(payload, step_file)
            self.manifest.record(step_file, step)
            with step_file.open("rb") as source:  # a copy, not a link: damage to one file never reaches the other
                write_atomic(last, lambda f: shutil.copyfileobj(source, f))
        else:
            if last.exists():  # the state before this one stays as previous.pt until the next save
                os.replace(last, self.folder / "previous.pt")
                fsync_dir(self.folder)
                self.manifest.rename("last.pt", "previous.pt")
            save_atomic(payload, last)
        self.manifest.record(last, step)
        self._last_is_valid = True
        self._prune()
        trainer.last_checkpoint = (last, step)
        trainer.checkpoint_saved(last)

    def _set_aside_damaged(self, last: Path) -> None:
        """A last.pt this run did not find valid is kept under another name, not rotated or overwritten."""
        if self._last_is_valid or not last.exists():
            return
        kept = self.folder / f"damaged-last-{time.strftime('%Y%m%d-%H%M%S')}.pt"
        os.replace(last, kept)
        fsync_dir(self.folder)
        self.manifest.forget(["last.pt"])
        log.warning("last.pt was damaged; kept as %s (nothing is deleted)", kept)

    def _prune(self) -> None:
        steps = sorted((p for p in self.folder.glob("step-*.pt") if STEP_FILE.fullmatch(p.name)),
                       key=lambda p: int(STEP_FILE.fullmatch(p.name).group(1)))
        old = steps[: max(0, len(steps) - self.keep_last)]
        for path in old:
            path.unlink()
        if old:
            self.manifest.forget([p.name for p in old])

    def on_step_end(self, trainer: Trainer) -> None:
        if self.every_n_steps and trainer.state.step % self.every_n_steps == 0:
            self.save_last(trainer)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if improved:
            payload = trainer.checkpoint(best=True)
            if self.write:
                best = self.folder / "best.pt"
                save_atomic(payload, best)
                self.manifest.record(best, trainer.state.step)
                trainer.checkpoint_saved(best)

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.save_last(trainer)

    def on_interrupt(self, trainer: Trainer) -> None:
        self.save_last(trainer)
        if self.write:
            log.info("saved %s at step %d", self.folder / "last.pt", trainer.state.step)

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.save_last(trainer)
