"""Baselines that depend only on the data, computed once per data and kept in ``PTLAB_CACHE``
(default ``~/.cache/ptlab``) under ``baselines/``, as the FID classifier is.

A baseline fitted by a deterministic solver on the same rows gives the same number every
time; a sweep's jobs, a relaunch and a second run of a task read it instead of fitting again
(for logreg: scikit-learn's import and fit, about 2 s of a 7 s run). The key is a hash of the
baseline's name, the solver's version and every byte of the rows.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

from torch import Tensor

from ptlab.atomic import read_json, write_json


def cache_dir() -> Path:
    return Path(os.environ.get("PTLAB_CACHE", "~/.cache/ptlab")).expanduser() / "baselines"


def cached(name: str, rows: Sequence[Tensor], compute: Callable[[], float]) -> float:
    """``compute()``'s value for ``rows``, from the cache or computed once and cached under ``name``."""
    digest = hashlib.sha256(name.encode())
    for tensor in rows:
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    path = cache_dir() / f"{name}-{digest.hexdigest()[:16]}.json"
    saved = read_json(path)
    if isinstance(saved, dict) and isinstance(saved.get("value"), float):
        return saved["value"]
    value = float(compute())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"value": value})
    except OSError:  # a read-only or full cache: the next run computes it again
        pass
    return value
