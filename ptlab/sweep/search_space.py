"""An Optuna search space from Hydra's override grammar, and a trial's parameters back as overrides.

The preset's ``hydra.sweeper.params`` come first, then the command line's overrides
(later ones win, key by key):

    choice(32, 64, 128), 32,64,128       → CategoricalDistribution (any values, lists too)
    range(1, 5), range(0.1, 0.5, 0.1)    → IntDistribution / FloatDistribution with that step, over
                                           the values the range enumerates (its stop is excluded)
    shuffle(range(...))                  → CategoricalDistribution of those values
    interval(1e-4, 1e-2)                 → FloatDistribution (Hydra reads interval bounds as floats)
    tag(log, interval(...))              → the same, sampled on a log scale
    key=value                            → fixed: in every trial's overrides, never searched

A fixed value on the command line takes its key out of the search space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ptlab.errors import ConfigError

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override
    from optuna.distributions import BaseDistribution


@dataclass
class SearchSpace:
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)  # key → the override as written
    spelled: dict[str, dict[Any, str]] = field(default_factory=dict)  # categorical value → its override text

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: its parameters (as the grammar spells them), then the fixed ones."""
        searched = [f"{key}={self.spelled.get(key, {}).get(value, value)}" for key, value in params.items()]
        return [*searched, *self.fixed.values()]


def search_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` (``key: sweep``) and the command line's ``arguments``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [f"{key}={value}" for key, value in (params or {}).items()]
    space = SearchSpace()
    parser = OverridesParser.create()
    for text in [*given, *arguments]:
        try:
            (override,) = parser.parse_overrides([text])
        except Exception as err:  # noqa: BLE001 - Hydra's grammar errors: one line naming the override
            where = "hydra.sweeper.params" if text in given else "the command line"
            raise ConfigError(f"{text}: not an override Hydra can read ({where}): {str(err).splitlines()[0]}") from None
        key = override.key_or_group
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        space.spelled.pop(key, None)
        if override.is_sweep_override():
            space.distributions[key] = _distribution(override, text, space.spelled.setdefault(key, {}))
        else:
            space.fixed[key] = text
    return space


def _distribution(override: Override, text: str, spelled: dict[Any, str]) -> BaseDistribution:
    from hydra.core.override_parser.types import Transformer, ValueType
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_interval_sweep():
        return FloatDistribution(float(value.start), float(value.end), log="log" in value.tags)
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        raise ConfigError(f"{text}: the Optuna sweeper searches choice(...), range(...) and interval(...), "
                          "not glob(...)")
    elements = list(override.sweep_iterator())
    if not elements:
        raise ConfigError(f"{text}: nothing to search; a range's stop is excluded, as in Python")
    if override.is_range_sweep() and not value.shuffle:
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(elements[0], elements[-1], step=value.step)
        return FloatDistribution(float(elements[0]), float(elements[-1]), step=float(value.step))
    for element in elements:
        spelled[Transformer.encode(element)] = Transformer.str(element)
    return CategoricalDistribution(list(spelled))
