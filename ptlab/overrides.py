"""Hydra command-line overrides as ptlab reads them, and the keys that tell runs apart.

An override is ``key=value`` with an optional prefix: ``+key=value`` adds a key,
``++key=value`` adds or overrides it, ``~key`` and ``~key=value`` delete it. The
value is kept as written (quotes, commas of a sweep, further ``=`` signs); Hydra's
own grammar reads it later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Override:
    prefix: str  # "", "+", "++" or "~" (the leading run of + and ~, as written)
    key: str  # without the prefix: "optimizer.lr", "hydra/launcher"
    value: str | None  # the text after the first "=", as written; None when there is no "=" (``~key``)

    @classmethod
    def parse(cls, arg: str) -> Override:
        head, sep, value = arg.partition("=")
        key = head.lstrip("+~")
        return cls(head[: len(head) - len(key)], key, value if sep else None)


def override_values(args: Iterable[str]) -> dict[str, str]:
    """``key → value`` of these overrides, prefixes dropped (``~key`` alone: ``""``); a later override of a key wins.

    The keys stay in the order they first appear.
    """
    values = {}
    for arg in args:
        override = Override.parse(arg)
        values[override.key] = override.value or ""
    return values


def all_keys(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every key of these mappings, in the order they first appear (the first's in its order, then new ones)."""
    return list(dict.fromkeys(key for run in runs for key in run))


_MISSING = object()


def differing_keys(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose value is not the same in every mapping, in the order of :func:`all_keys`.

    Values are compared with ``==`` as they are (a nested dict or list is one value, not flattened into keys);
    a key missing from a mapping differs from any value it has in another, ``None`` included. Fewer than two
    mappings: none differ.
    """
    return [key for key in all_keys(runs)
            if any(run.get(key, _MISSING) != runs[0].get(key, _MISSING) for run in runs[1:])]


def naming_keys(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys that tell these runs apart (:func:`differing_keys`); for a single run, all of its keys."""
    return differing_keys(runs) if len(runs) > 1 else all_keys(runs)
