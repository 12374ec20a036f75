"""The check that a data set can feed the objective: what it holds against the kind of data the objective reads."""

from __future__ import annotations

from typing import Collection

from ptlab.errors import ConfigError


def expect_kind(data_name: str, target_kind: str, serves: Collection[str], holds: str, fix: str) -> None:
    """Refuse ``data=data_name`` unless the objective's ``target_kind`` is one it ``serves``.

    ``holds`` says what the data is ("labelled images") and ``fix`` what to
    use instead ("objective=classification or task=gan"), for the one message.
    """
    if target_kind not in serves:
        raise ConfigError(f"data={data_name} holds {holds} but the objective reads {target_kind} data; use {fix}")
