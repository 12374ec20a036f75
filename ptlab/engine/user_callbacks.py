"""Your own callbacks: the config's ``callbacks:`` list of ``_target_`` nodes, e.g.

    callbacks:
      - _target_: mypkg.callbacks.GradientNorms   # a subclass of ptlab.engine.callbacks.Callback
        every: 10                                 # its keyword arguments

or on the command line ``'callbacks=[{_target_: mypkg.callbacks.GradientNorms, every: 10}]'``, and
``ptlab.train(cfg, callbacks=[...])`` in Python. They run on every rank (write files only where
``trainer.world.is_main``), after the loggers and before the checkpointer, so a checkpoint holds
their state after the hooks of its step (docs/callbacks.md).
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

from ptlab.engine.callbacks import Callback
from ptlab.errors import ConfigError


def _resolved(nodes: Any) -> list[dict[str, Any]]:
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(nodes, resolve=True) if OmegaConf.is_config(nodes) else nodes
    if plain is None:
        return []
    if not isinstance(plain, list):
        raise ConfigError("callbacks: a list of `_target_` nodes, e.g. 'callbacks=[{_target_: mypkg.MyCallback}]'")
    return plain


def _target(node: Any, key: str) -> tuple[type, dict[str, Any]]:
    from ptlab.registry import import_target

    if not isinstance(node, dict) or "_target_" not in node:
        raise ConfigError(f"{key}: needs `_target_`, the dotted path of a ptlab Callback class, e.g. "
                          "{_target_: mypkg.callbacks.MyCallback}")
    cls = import_target(str(node["_target_"]), f"{key}._target_")
    if not (inspect.isclass(cls) and issubclass(cls, Callback)):
        raise ConfigError(f"{key}._target_: {node['_target_']} is not a subclass of ptlab.engine.callbacks.Callback; "
                          "subclass it (its hooks do nothing until you override them)")
    return cls, {k: v for k, v in node.items() if k != "_target_"}


def callback_entries(nodes: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """(config key, Callback class, its keyword arguments) of every entry, imported and checked to be a Callback
    (not built: ptlab.config checks the arguments against the class before any folder is made)."""
    return [(f"callbacks[{i}]", *_target(node, f"callbacks[{i}]")) for i, node in enumerate(_resolved(nodes))]


def build_callbacks(nodes: Any, extra: Sequence[Callback] = ()) -> list[Callback]:
    """The config's callbacks, built, then ``extra`` (those passed to ``ptlab.train``)."""
    built = [cls(**kwargs) for _, cls, kwargs in callback_entries(nodes)]
    for callback in extra:
        if not isinstance(callback, Callback):
            raise ConfigError(f"callbacks: {type(callback).__name__} is not a ptlab.engine.callbacks.Callback; "
                              "subclass it")
    return [*built, *extra]
