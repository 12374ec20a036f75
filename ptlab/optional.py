"""Optional packages: a registry entry names the ones it imports lazily, and the config check finds them first.

An entry (a class or a function) declares ``requires``, import name → what to ``pip install``::

    class MLflowLogger(Callback):
        requires = {"mlflow": "ptlab[track]"}

:func:`check_installed` runs in :func:`ptlab.config.check_call`, before the run folder is
made, so a missing package is one line and exit code 2 instead of a traceback mid-run.
It asks :func:`importlib.util.find_spec`, which imports nothing of the package itself.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ptlab.errors import ConfigError


def is_installed(module: str) -> bool:
    """Whether ``import module`` can find the package (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails, or a module without a spec
        return False


def check_installed(key: str, fn: Any) -> None:
    """Raise ConfigError naming ``key`` when a package in ``fn.requires`` is not installed."""
    for module, install in (getattr(fn, "requires", None) or {}).items():
        if not is_installed(module):
            raise ConfigError(f"{key}: needs the {module} package, which is not installed; "
                              f"pip install '{install}'")
