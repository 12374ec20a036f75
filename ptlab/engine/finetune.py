"""Fine-tuning: start from another run's weights, freeze some, re-initialize others.

Every parameter and buffer of the new model is accounted for: loaded from the
checkpoint, or re-initialized because a ``finetune.reinit`` glob names it.
A key that is missing, unexpected or of another shape and not covered by
``reinit`` is an error, never a warning — a silently half-loaded model is the
bug this module exists to prevent.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from torch import nn

from ptlab.engine.checkpoint import CheckpointError, load_checkpoint
from ptlab.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")


@dataclass
class FinetuneReport:
    loaded: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    frozen_modules: list[nn.Module] = field(default_factory=list)


def matches(name: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


def apply_finetune(model: nn.Module, source: str, freeze: list[str], reinit: list[str]) -> FinetuneReport:
    """Load ``source``'s weights into ``model``, keep ``reinit`` fresh, freeze ``freeze``; report every key."""
    try:
        weights = load_checkpoint(source)["model"]
    except CheckpointError as err:
        raise ConfigError(str(err).replace("ckpt:", "finetune.from:", 1)) from None
    target = model.state_dict()
    for key, globs in (("finetune.reinit", reinit), ("finetune.freeze", freeze)):
        for glob in globs:
            if not any(fnmatch.fnmatchcase(name, glob) for name in target):
                raise ConfigError(f"{key}: {glob!r} matches no parameter; names look like {', '.join(list(target)[:3])}")
    report = FinetuneReport()
    state = dict(target)
    for name, tensor in target.items():
        if matches(name, reinit):
            report.reinitialized.append(name)
        elif name not in weights:
            report.missing.append(name)
        elif weights[name].shape != tensor.shape:
            report.mismatched.append(f"{name} {tuple(weights[name].shape)} → {tuple(tensor.shape)}")
        else:
            state[name] = weights[name]
            report.loaded.append(name)
    report.unexpected = [name for name in weights if name not in target and not matches(name, reinit)]
    problems = report.missing + report.mismatched + report.unexpected
    if problems:
        names = [p.split(" ")[0] for p in problems]
        raise ConfigError(
            f"finetune.from: the checkpoint does not fit this model: {'; '.join(describe(report))}. "
            f"If these layers are meant to be new, add finetune.reinit=[{','.join(suggest_globs(names))}]"
        )
    model.load_state_dict(state, strict=True)
    for name, param in model.named_parameters():
        if matches(name, freeze):
            param.requires_grad_(False)
            report.frozen.append(name)
    # Normalization layers whose weights are all frozen also keep their running statistics.
    report.frozen_modules = [
        m for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase) and list(m.parameters())
        and not any(p.requires_grad for p in m.parameters())
    ]
    return report


def describe(report: FinetuneReport) -> list[str]:
    rows = []
    for label in ("missing", "unexpected", "mismatched"):
        keys = getattr(report, label)
        if keys:
            rows.append(f"{label if label != 'mismatched' else 'shape-mismatched'}: {', '.join(keys)}")
    return rows


def suggest_globs(names: list[str]) -> list[str]:
    """``head.5.weight``, ``head.5.bias`` → ``head.5.*``: the module that owns each key."""
    return sorted({f"{name.rpartition('.')[0]}.*" if "." in name else name for name in names})


def log_report(report: FinetuneReport, source: str) -> None:
    from rich.table import Table

    from ptlab.logging.console import console

    table = Table(title=f"fine-tuning from {source}", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_column("keys")
    for label, keys in (("loaded", report.loaded), ("frozen", report.frozen), ("reinitialized", report.reinitialized),
                        ("missing", report.missing), ("unexpected", report.unexpected),
                        ("shape-mismatched", report.mismatched)):
        shown = ", ".join(keys[:6]) + (f", … ({len(keys) - 6} more)" if len(keys) > 6 else "")
        table.add_row(label, str(len(keys)), shown)
        log.info("finetune: %s %d%s", label, len(keys), f" ({', '.join(keys)})" if keys and label != "loaded" else "",
                 extra={"console": False})
    console().print(table)


def parameter_groups(model: nn.Module, reinit: list[str], lr: float | None, lr_mult: float) -> list:
    """Trainable parameters; with ``lr_mult`` ≠ 1, loaded ones train at ``lr × lr_mult``, new ones at ``lr``."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if lr_mult == 1.0 or lr is None:
        return [p for _, p in trainable]
    loaded = [p for n, p in trainable if not matches(n, reinit)]
    fresh = [p for n, p in trainable if matches(n, reinit)]
    return [g for g in ({"params": loaded, "lr": lr * lr_mult}, {"params": fresh}) if g["params"]]


def optimizer_parameters(cfg: DictConfig, objective: Objective, model: nn.Module) -> dict[str, Any]:
    """Parameters per optimizer, as the objective asks; fine-tuning's lr_mult splits them into groups."""
    named = objective.parameters(model)
    if cfg.finetune["from"] and cfg.finetune.lr_mult != 1.0 and list(named) == ["main"]:
        named["main"] = parameter_groups(model, list(cfg.finetune.reinit), cfg.optimizer.get("lr"), cfg.finetune.lr_mult)
    return named
