"""The trainer's checkpoint half: what a checkpoint holds of a run, and how a run continues from one.

Kept apart from the loop (ptlab.engine.trainer) so that each reads on its own; the Trainer
inherits these two methods and the callbacks' state.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from ptlab.engine.checkpoint import clean_state_dict, payload, per_rank, rank_state, rng_state, set_rng_state, to_cpu
from ptlab.engine.loop_state import LoopState
from ptlab.errors import PtlabError

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")

PLAIN = (str, int, float, bool, type(None), torch.Tensor)


class TrainerState:
    """Mixed into :class:`ptlab.engine.trainer.Trainer`: ``checkpoint()`` and ``restore()``."""

    def checkpoint(self: Trainer, best: bool = False) -> dict[str, Any]:
        """This run as a checkpoint (ptlab.engine.checkpoint.payload); ``best``: the best weights, no optimizer state.

        With ``trainer.ema.decay``, ``model`` of best.pt is the average (what validation judged) and
        ``model_without_ema`` the raw weights of the same step; last.pt keeps the raw weights and the average.
        """
        training = {
            "model": self.best_weights if best else clean_state_dict(self.model),
            "optimizers": {} if best else {k: to_cpu(o.state_dict()) for k, o in self.run.optimizers.items()},
            "schedulers": {} if best else {k: s.state_dict() for k, s in self.run.schedulers.items()},
            "scaler": self.precision.scaler.state_dict() if self.precision.scaler and not best else None,
            "rng": per_rank(rng_state(), self.world),
            "loop": asdict(self.state),
            "logs": {} if best else per_rank(self._logs.state_dict(), self.world),  # the open logging interval
            "best": {k: v for k, v in asdict(self.best).items() if k not in ("monitor", "mode", "min_delta")},
            "callbacks": {} if best else callback_states(self.callbacks),
        }
        if self.ema is not None:
            training["model_without_ema" if best else "ema"] = (self.best_without_ema if best
                                                                else self.ema.state_dict())
        return payload(self.run, training)

    def restore(self: Trainer, payload: dict[str, Any], best: dict[str, Any] | None) -> None:
        """Continue a run from ``payload`` (a last.pt) exactly where it stopped; ``best``: best.pt's weights."""
        self.model.load_state_dict(payload["model"])
        for name, state in payload["optimizers"].items():
            self.run.optimizers[name].load_state_dict(state)
        for name, state in payload["schedulers"].items():
            self.run.schedulers[name].load_state_dict(state)
        if self.precision.scaler and payload["scaler"]:
            self.precision.scaler.load_state_dict(payload["scaler"])
        if self.ema is not None and payload.get("ema"):  # trainer.ema.decay cannot change on resume (resume.py)
            self.ema.load_state_dict(payload["ema"])
        load_callback_states(self.callbacks, payload.get("callbacks") or {})
        self.state = LoopState(**payload["loop"])
        self._logs.load_state_dict(rank_state(payload.get("logs") or {}, self.world))  # older checkpoints: none
        if self.state.stop_reason and self.settings.allows_more_than(payload["config"]["trainer"]):
            log.info("resume: the run had stopped (%s); the raised budget lets it go on, with the same patience "
                     "count", self.state.stop_reason)
            self.state.stop_reason = None
        for key, value in payload["best"].items():
            setattr(self.best, key, value)
        self.best_weights = best and best.get("model")
        self.best_without_ema = best and best.get("model_without_ema")
        set_rng_state(rank_state(payload["rng"], self.world))
        self.state.world_size = self.world.size  # (resume_payload said so if it changed)


def stateful(callbacks: list) -> dict[str, Any]:
    """The callbacks that keep state ({key: callback}): those with ``state_dict``/``load_state_dict``.

    The key is the callback's ``state_key`` if it has one, else its class name; a second callback
    with the same key gets ``#2``, in the order of the callbacks list.
    """
    found: dict[str, Any] = {}
    for callback in callbacks:
        if not callable(getattr(callback, "state_dict", None)):
            continue
        key = base = str(getattr(callback, "state_key", type(callback).__qualname__))
        count = 1
        while key in found:
            count += 1
            key = f"{base}#{count}"
        found[key] = callback
    return found


def callback_states(callbacks: list) -> dict[str, Any]:
    """Every stateful callback's ``state_dict()``, checked to be plain data (a checkpoint loads with weights_only)."""
    states = {key: callback.state_dict() for key, callback in stateful(callbacks).items()}
    for key, state in states.items():
        where = _not_plain(state, "")
        if where is not None:
            raise PtlabError(f"callbacks: {key}.state_dict() holds {where}; a checkpoint keeps plain data only "
                             "(dict, list, tuple, str, int, float, bool, None, tensors): convert it, e.g. a set to "
                             "a sorted list")
    return states


def load_callback_states(callbacks: list, saved: dict[str, Any]) -> None:
    for key, callback in stateful(callbacks).items():
        if key in saved:
            callback.load_state_dict(saved[key])
        else:
            log.warning("resume: the checkpoint holds no state of callback %s; it starts afresh", key)


def _not_plain(value: Any, path: str) -> str | None:
    """Where ``value`` holds something other than plain data (``a {type} at {path}``), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                return f"a {type(key).__name__} key at {path or '.'}"
            found = _not_plain(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next((f for i, item in enumerate(value) if (f := _not_plain(item, f"{path}[{i}]"))), None)
    return None if isinstance(value, PLAIN) else f"a {type(value).__name__} at {path or '.'}"
