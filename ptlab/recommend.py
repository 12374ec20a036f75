"""``ptlab recommend``: a recommender checkpoint's top-k items for one user, without what the user already has."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ptlab.errors import ConfigError


@dataclass
class Recommendation:
    """One recommended item: its id as in the data, its title ("" when the data has none) and its model score."""

    rank: int
    item: str
    title: str
    score: float


def recommend(ckpt: str | Path, user: str, k: int = 10, device: Optional[str] = None) -> list[Recommendation]:
    """The ``k`` items the checkpoint's model scores highest for ``user`` (an id as it appears in the data),
    leaving out every item the user interacted with in any split."""
    from ptlab.api import rebuild
    from ptlab.data.interactions import known_items

    payload, run = rebuild(ckpt, device=device or "cpu")
    state = payload.get("data_state") or {}
    if "users" not in state or "items" not in state:
        raise ConfigError(f"ckpt: {ckpt} is a checkpoint of task={payload['config'].get('task', '?')}, not of a "
                          "recommender; give a checkpoint of task=recsys")
    users = state["users"]
    try:
        index = users.index(str(user))
    except ValueError:
        raise ConfigError(f"user: {user!r} is not a user of this checkpoint's data ({len(users)} users, e.g. "
                          f"{', '.join(users[:3])}); give an id as it appears in the data") from None
    run.model.eval()
    with torch.no_grad():
        scores = run.model(torch.tensor([index], device=run.device)).squeeze(0).float().cpu()
    had = known_items(run.data, index)
    scores[had] = float("-inf")
    available = int((scores > float("-inf")).sum())
    top = scores.topk(min(k, available))
    titles = state.get("titles") or [""] * len(state["items"])
    return [Recommendation(rank, state["items"][i], titles[i], float(s))
            for rank, (s, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1)]
