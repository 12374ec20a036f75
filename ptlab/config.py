"""The config schema: types and ranges, checked before anything is built.

Hydra's struct mode already rejects unknown keys while composing. This module
checks what Hydra cannot: the type and range of every value. Sections with a
fixed shape (``trainer``, ``checkpoint``, the top level) are dataclasses here;
sections that name a registry entry (``model``, ``data``, ``optimizer``, ...)
are checked against the entry's own signature, so a model's keyword arguments
*are* its schema. Ranges are written into annotations::

    def __init__(self, ..., dropout: Probability = 0.25): ...
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Sequence, Union

from ptlab.errors import ConfigError
from ptlab.optional import check_installed


@dataclass(frozen=True)
class Range:
    """Bounds for a number; ``None`` means unbounded on that side."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def violated(self, value: float) -> bool:
        return (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __str__(self) -> str:
        low = f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else "(-inf"
        high = f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else "inf)"
        return f"{low}, {high}"


class ExistingPath:
    """Marker: the string must name a file or folder that exists."""


PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Probability = Annotated[float, Range(ge=0, lt=1)]
Fraction = Annotated[float, Range(gt=0, lt=1)]
PathThatExists = Annotated[str, ExistingPath()]


# --- sections with a fixed shape -------------------------------------------------------------

@dataclass
class EarlyStoppingConfig:
    patience: Optional[PositiveInt] = None  # validations without improvement before stopping; null: off
    min_delta: NonNegativeFloat = 0.0  # smallest change of the monitored metric that counts


@dataclass
class EmaConfig:
    decay: Optional[Fraction] = None  # w̄ ← d·w̄ + (1 − d)·w every step (ptlab.engine.weight_average); null: off


@dataclass
class TrainerConfig:
    max_epochs: PositiveInt = 10
    max_steps: Optional[PositiveInt] = None  # optimizer steps; null: no limit
    precision: Literal["32", "bf16", "16"] = "32"
    grad_accum: PositiveInt = 1
    grad_clip: Optional[PositiveFloat] = None  # max global gradient norm; null: off
    log_every_n_steps: PositiveInt = 50
    val_every_n_epochs: PositiveInt = 1
    val_every_n_steps: Optional[PositiveInt] = None  # validate every N optimizer steps instead of by epochs
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)  # an average of the weights for validation, test, best.pt
    compile: bool = False  # torch.compile the model
    progress: Literal["auto", "bar", "plain"] = "auto"  # auto: a bar on a terminal, plain lines otherwise
    # debugging (configs/debug/ combines these into one-word presets)
    limit_train_batches: Optional[PositiveInt] = None  # at most N batches per epoch; null: all
    limit_val_batches: Optional[PositiveInt] = None
    limit_test_batches: Optional[PositiveInt] = None
    overfit_batches: Optional[PositiveInt] = None  # train and validate on the same N fixed batches
    skip_nonfinite: bool = False  # skip (and count) steps whose loss or gradient is NaN/inf instead of stopping
    detect_anomaly: bool = False  # torch.autograd anomaly detection: name the operation that made a NaN
    profile_steps: Optional[PositiveInt] = None  # torch.profiler trace of N steps into RUN_DIR/profile
    peak_flops: Optional[PositiveFloat] = None  # the hardware's peak FLOP/s, for train/mfu; null: known GPUs only

    def steps_per_epoch(self, batches: int) -> int:
        """Optimizer steps in an epoch of ``batches`` batches (a last, shorter accumulation window is a step too)."""
        return math.ceil(batches / self.grad_accum)

    def total_steps(self, batches: int) -> int:
        """Optimizer steps a run over epochs of ``batches`` batches takes if nothing stops it early."""
        total = self.steps_per_epoch(batches) * self.max_epochs
        return total if self.max_steps is None else min(total, self.max_steps)

    def allows_more_than(self, saved: Mapping[str, Any]) -> bool:
        """Whether these settings let a run take more steps than ``saved`` (an earlier run's ``trainer``) did."""
        def more(key: str) -> bool:
            old, new = saved.get(key), getattr(self, key)
            return old is not None and (new is None or new > old)

        return more("max_epochs") or more("max_steps")


@dataclass
class CheckpointConfig:
    monitor: str = "val/loss"  # a metric name; best.pt keeps the best value of it
    mode: Literal["min", "max"] = "min"
    every_n_steps: Optional[PositiveInt] = None  # also write last.pt every N optimizer steps
    keep_last: NonNegativeInt = 0  # also keep the newest K step checkpoints (step-NNNNNNNN.pt)
    save: bool = True  # write checkpoints at all


@dataclass
class FinetuneConfig:
    from_: Optional[PathThatExists] = None  # `finetune.from`: a ptlab checkpoint to take the model weights from
    freeze: list[str] = field(default_factory=list)  # globs of parameter names to freeze
    reinit: list[str] = field(default_factory=list)  # globs of parameters that keep their fresh initialization
    lr_mult: PositiveFloat = 1.0  # learning-rate factor for loaded, trainable parameters


@dataclass
class SweepConfig:
    objective: str = "val/loss"  # the metric a sweep ranks jobs by and `ptlab train` returns to Hydra's sweeper
    mode: Literal["min", "max"] = "min"
    pruner: Literal["none", "median"] = "none"  # Optuna sweeps: median stops a trial worse than the median so far
    pruner_startup_trials: NonNegativeInt = 5  # trials that finish before the pruner stops any
    trial: Optional[NonNegativeInt] = None  # set by the Optuna sweeper for its jobs: the trial a job reports to


@dataclass
class RootConfig:
    task: str = "cnn"
    device: str = "auto"
    seed: int = 0
    resume: Optional[str] = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


def fixed_defaults() -> dict[str, Any]:
    """The defaults of the fixed-shape sections, spelled as in configs (a checkpoint older than a key has them)."""
    def plain(value: Any) -> Any:
        if is_dataclass(value):
            return {f.name.rstrip("_"): plain(getattr(value, f.name)) for f in fields(value)}
        return value

    defaults = plain(RootConfig())
    for key in ("task", "device", "seed", "resume"):  # set by every config; not a section default
        defaults.pop(key)
    return defaults


def trainer_settings(cfg: Mapping[str, Any]) -> TrainerConfig:
    """``cfg.trainer`` as a plain dataclass: attribute reads in the hot loop cost nothing."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg.trainer, resolve=True)
    values["precision"] = str(values["precision"])
    values["early_stopping"] = EarlyStoppingConfig(**values["early_stopping"])
    values["ema"] = EmaConfig(**values["ema"])
    settings = TrainerConfig(**values)
    if settings.overfit_batches and (settings.limit_train_batches or settings.limit_val_batches):
        raise ConfigError("trainer.overfit_batches: it trains and validates on its own fixed batches; drop "
                          "trainer.limit_train_batches and trainer.limit_val_batches, or trainer.overfit_batches")
    return settings


def checkpoint_settings(cfg: Mapping[str, Any]) -> CheckpointConfig:
    """``cfg.checkpoint`` as a plain dataclass (what the trainer and ptlab.engine.checkpointer read)."""
    from omegaconf import OmegaConf

    return CheckpointConfig(**OmegaConf.to_container(cfg.checkpoint, resolve=True))


PER_DEVICE = "batch_size_per_device"  # data.batch_size_per_device: a torchrun option of every dataset

# Sections built from a registry: config key → registry attribute name in ptlab.catalog.
REGISTRY_SECTIONS = {
    "objective": "OBJECTIVES",
    "data": "DATASETS",
    "model": "MODELS",
    "optimizer": "OPTIMIZERS",
    "scheduler": "SCHEDULERS",
}


def validate(cfg: Mapping[str, Any]) -> None:
    """Check every value of a composed train config; raise ConfigError naming the key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    from ptlab import catalog

    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True) if OmegaConf.is_config(cfg) else dict(cfg)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key}: required; add {err.full_key}=VALUE to the command line") from None
    fixed = {k: v for k, v in plain.items() if k not in REGISTRY_SECTIONS and k not in ("hydra", "logger", "callbacks")}
    check_dataclass("", fixed, RootConfig)
    from ptlab.engine.user_callbacks import callback_entries

    for key, cls, kwargs in callback_entries(plain.get("callbacks")):  # each takes its keys: not built here
        check_call(key, {"_target_": f"{cls.__module__}.{cls.__qualname__}"}, cls, kwargs, injected=frozenset())
    for name, node in (plain.get("logger") or {}).items():  # logger=[tensorboard,csv]: one entry per logger
        logger = {"name": name, **(node or {})}
        check_call(f"logger.{name}", logger, *catalog.LOGGERS.resolve(logger, f"logger.{name}"),
                   injected=catalog.LOGGERS.injected)
    for key, registry_name in REGISTRY_SECTIONS.items():
        if key not in plain:
            raise ConfigError(f"{key}: missing section; pick one with {key}=NAME (see `ptlab list`)")
        registry = getattr(catalog, registry_name)
        node = dict(plain[key])
        if key == "data" and PER_DEVICE in node:
            check_value(f"data.{PER_DEVICE}", node.pop(PER_DEVICE), Optional[PositiveInt])
        check_call(key, node, *registry.resolve(node, key), injected=registry.injected)


def check_dataclass(prefix: str, values: Mapping[str, Any], schema: type) -> None:
    hints = typing.get_type_hints(schema, include_extras=True)
    names = {f.name.rstrip("_"): f.name for f in fields(schema)}  # `from_` is spelled `from` in configs
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{full}: unknown key. {_suggest(key, names)}")
        hint = hints[names[key]]
        if is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{full}: expected a section with keys {sorted(f.name for f in fields(hint))}, got {value!r}")
            check_dataclass(f"{full}.", value, hint)
        else:
            check_value(full, value, hint)


def check_monitor(monitor: str, metric_names: list[str]) -> None:
    """``checkpoint.monitor`` must name a validation metric the objective reports."""
    valid = ["val/loss"] + [f"val/{name}" for name in metric_names]
    if monitor not in valid:
        raise ConfigError(f"checkpoint.monitor: {monitor!r} is not a metric of this run; use one of {', '.join(valid)}")


def check_call(key: str, node: Mapping[str, Any], fn: Any, kwargs: Mapping[str, Any], injected: frozenset[str]) -> None:
    """Check config keyword arguments against the signature of the callable they will be passed to."""
    import inspect

    target = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(target).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # annotations we cannot evaluate: check names only
        hints = {}
    for name, value in kwargs.items():
        if name not in params and not takes_any:
            valid = [p for p in params if p not in injected and p != "self"]
            raise ConfigError(f"{key}.{name}: unknown key for {node.get('name', node.get('_target_'))}. {_suggest(name, valid)}")
        if name in injected:
            raise ConfigError(f"{key}.{name}: ptlab sets this one itself; remove it from the config")
        if name in hints:
            check_value(f"{key}.{name}", value, hints[name])
    for name, p in params.items():
        if name in ("self", *injected) or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.default is p.empty and name not in kwargs:
            raise ConfigError(f"{key}.{name}: required; add {key}.{name}=VALUE to the command line")
    check_installed(key, fn)  # the optional packages the entry imports lazily (ptlab.optional)


def check_value(key: str, value: Any, hint: Any) -> None:
    """Raise ConfigError unless ``value`` fits the annotation ``hint``."""
    problem = _mismatch(value, hint)
    if problem:
        raise ConfigError(f"{key}: {problem}")


def _mismatch(value: Any, hint: Any) -> str | None:
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin is Annotated:
        base, *marks = typing.get_args(hint)
        problem = _mismatch(value, base)
        if problem:
            return problem
        for mark in marks:
            if isinstance(mark, Range) and value is not None and mark.violated(value):
                return f"{value!r} is out of range; use a value in {mark}"
            if isinstance(mark, ExistingPath) and not Path(value).expanduser().exists():
                return f"{value!r} does not exist; give the path of an existing file or folder"
        return None
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = [_mismatch(value, option) for option in options if option is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if origin is Literal:
        choices = [str(c) for c in typing.get_args(hint)]
        return None if str(value) in choices else f"{value!r} is not one of {', '.join(choices)}"
    if origin in (list, tuple, Sequence, typing.get_origin(Sequence[int])):
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {value!r}"
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        for item in value:
            problem = _mismatch(item, args[0]) if args else None
            if problem:
                return f"in list: {problem}"
        return None
    if hint is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else f"expected an integer, got {value!r}"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if hint is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    return None


def _suggest(word: str, valid: Any) -> str:
    from ptlab.registry import did_you_mean

    valid = sorted(valid)
    return f"{did_you_mean(word, valid)}Valid keys: {', '.join(valid)}."
