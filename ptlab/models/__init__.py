"""Models: each file is the formula of one chapter of the book."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from ptlab.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ptlab.objectives.base import Objective

Builder = TypeVar("Builder", bound=Callable)


def serves(*target_kinds: str) -> Callable[[Builder], Builder]:
    """Mark a model builder with the objectives' target kinds it is made for.

    ``@serves("classification")`` on a classifier: ``ptlab.build`` refuses it
    under an objective whose ``target_kind`` is another (regression,
    generation, language_model, text_classification) with one line naming
    model= and data=, instead of failing inside the first training step. Your
    own models may take the mark too; an unmarked model is not checked.
    """

    def mark(builder: Builder) -> Builder:
        builder.target_kinds = target_kinds  # type: ignore[attr-defined]
        return builder

    return mark


def check_model_fits(cfg: DictConfig, objective: Objective, info: Mapping[str, Any]) -> None:
    """Refuse, in one line naming model= and data=, a model made for another kind of target (its ``serves`` mark,
    see ptlab/models/__init__.py) or one that needs an input the data does not describe (e.g. an image model's
    ``in_channels`` on a table); name the models that fit."""
    import inspect

    from omegaconf import OmegaConf

    from ptlab import catalog

    def problem(node: Mapping[str, Any]) -> str | None:
        fn, _ = catalog.MODELS.resolve(node, "model")
        kinds = getattr(fn, "target_kinds", None)
        if kinds is not None and objective.target_kind not in kinds:
            made_for = " or ".join(kind.replace("_", " ") for kind in kinds)
            wanted = objective.target_kind.replace("_", " ")
            return f"it is made for {made_for}, not {wanted} (objective={cfg.objective.name})"
        missing = [p.name for p in inspect.signature(fn).parameters.values()
                   if p.name in catalog.MODELS.injected and p.default is p.empty and p.name not in info]
        if missing:
            given = ", ".join(k for k in info if k in catalog.MODELS.injected) or "nothing a model reads"
            return f"it needs {', '.join(missing)} from the data, which gives {given}"
        return None

    why = problem(OmegaConf.to_container(cfg.model, resolve=True))
    if why is not None:
        fits = [name for name in catalog.MODELS.names() if problem({"name": name}) is None]
        model, data = cfg.model.get("name", cfg.model.get("_target_")), cfg.data.get("name", cfg.data.get("_target_"))
        hint = f"use model={' or model='.join(fits)}" if fits else "choose another data= or objective="
        raise ConfigError(f"model={model} does not fit data={data}: {why}; {hint}")
