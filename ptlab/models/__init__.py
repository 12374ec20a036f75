"""Models: each file is the formula of one chapter of the book."""

from __future__ import annotations

from typing import Callable, TypeVar

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
