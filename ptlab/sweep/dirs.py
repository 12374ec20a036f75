"""Where a sweep and its jobs live, named by what they are so that a re-run finds them.

    outputs/<task>/multirun/<sweep key>/<job key>/

The sweep key hashes the command line's overrides (not Hydra's own, not ``resume``
or ``sweep.*``): the same command, in any order, gives the same folder. The job
key hashes the job's resolved config (without ``hydra``, ``resume`` and
``sweep``): the same config gives the same job folder, whichever sweeper asked
for it and at which position.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

from ptlab.overrides import Override

# Top-level keys that do not change what a job computes.
NOT_PART_OF_A_JOB = ("hydra", "resume", "sweep", "logger")  # a logger changes what a job reports, not the job
# Keys added since job keys were first made that only change what a job reports: left out, so that a
# sweep started before they existed is still found by the same command.
REPORTING_ONLY = (("trainer", "peak_flops"),)
MULTIRUN_FLAGS = ("-m", "--multirun")


def digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def job_key(*, _root_: Any) -> str:
    """``${ptlab.job_key:}``: 10 hex digits of the SHA-256 of the job's resolved config."""
    from omegaconf import OmegaConf

    plain = {}
    for key in _root_:
        if key not in NOT_PART_OF_A_JOB:
            value = _root_[key]
            plain[str(key)] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    for section, key in REPORTING_ONLY:
        if isinstance(plain.get(section), dict):
            plain[section].pop(key, None)
    return digest(json.dumps(plain, sort_keys=True, default=str), 10)


def with_sweep_dir(args: Sequence[str], task: str) -> list[str]:
    """``-m`` without ``hydra.sweep.dir=``: add ``hydra.sweep.dir=outputs/<task>/multirun/<sweep key>``."""
    args = list(args)
    if not any(a in MULTIRUN_FLAGS for a in args) or any(Override.parse(a).key == "hydra.sweep.dir" for a in args):
        return args
    defining = sorted(a for a in args if not a.startswith("-") and _defines_the_sweep(Override.parse(a)))
    return [*args, f"hydra.sweep.dir=outputs/{task}/multirun/{digest(chr(10).join(defining), 8)}"]


def _defines_the_sweep(override: Override) -> bool:
    """Whether ``override`` is part of the sweep key: it sets a value, and not one of Hydra, ``resume`` or ``sweep.*``."""
    key = override.key
    return (override.value is not None and not key.startswith(("hydra.", "hydra/")) and key != "resume"
            and not key.startswith("sweep."))
