"""Recommender data: user–item interactions → id maps, per-user splits and batches (the builders of task=recsys).

Ids: the distinct raw user (item) ids, sorted — as numbers when every one is an integer
("2" < "10"), else as strings — are the indices 0 … U−1 (0 … I−1). A (user, item) pair that
occurs more than once keeps its last occurrence by timestamp, then by row order.

Splits are per user, over that user's interactions in time order (row order without timestamps):

- ``leave_last_out`` (the NCF protocol, He et al. 2017): the last one → test, the one before → val,
  the rest → train; a user with fewer than 3 stays wholly in train.
- ``random``: each user's interactions shuffled with ``split_seed``; round(test_fraction · n) of a
  user's n → test, round(val_fraction · n) → val, the rest → train; a user for whom any of the three
  would get none stays wholly in train.

``objective=ranking`` reads every row as a positive (ratings ignored; batches in
:mod:`ptlab.data.interaction_batches`); ``objective=rating`` reads (user, item, rating) triples.
``Data.state`` keeps the raw ids in index order and the item titles, so a checkpoint can name them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch import Tensor

from ptlab.config import Fraction, NonNegativeFloat, PathThatExists, PositiveFloat, PositiveInt
from ptlab.data.downloads import dataset_folder
from ptlab.data.interaction_batches import ranking_batches
from ptlab.data.interaction_files import (
    Interactions, read_interactions_csv, read_movielens_100k, read_movielens_1m, read_movielens_latest,
)
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data, in_memory_splits, stored_rows
from ptlab.data.planted import planted_interactions
from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")

Split = Literal["leave_last_out", "random"]
Ranking = Literal["full", "sampled"]
TRAIN, VAL, TEST = 0, 1, 2
MOVIELENS = {"100k": ("ml-100k", "u.data", read_movielens_100k), "1m": ("ml-1m", "ratings.dat", read_movielens_1m),
             "latest-small": ("ml-latest-small", "ratings.csv", read_movielens_latest)}
MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/{}.zip"
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Options:
    """The config keys every interaction builder shares."""

    batch_size: int
    split: Split
    val_fraction: float
    test_fraction: float
    split_seed: int
    ranking: Ranking
    sampled_negatives: int
    num_negatives: int


def planted(
    *, num_users: PositiveInt = 943, num_items: PositiveInt = 1682, rank: PositiveInt = 8,
    mean_interactions: PositiveFloat = 40, min_interactions: PositiveInt = 3, popularity: NonNegativeFloat = 0.5,
    skew: NonNegativeFloat = 1.0, temperature: PositiveFloat = 0.3, generator_seed: int = 0,
    batch_size: PositiveInt = 256, split: Split = "leave_last_out", val_fraction: Fraction = 0.1,
    test_fraction: Fraction = 0.1, split_seed: int = 0, ranking: Ranking = "full", sampled_negatives: PositiveInt = 99,
    num_negatives: PositiveInt = 1, target_kind: str, device: torch.device, seed: int,
) -> Data:
    """Generated interactions (offline): planted low-rank taste plus popularity skew, known true scores, ratings."""
    _expect_interactions("planted", target_kind)
    table, _ = planted_interactions(num_users, num_items, rank, mean_interactions, min_interactions, popularity, skew,
                                    temperature, generator_seed)
    options = Options(batch_size, split, val_fraction, test_fraction, split_seed, ranking, sampled_negatives,
                      num_negatives)
    return interaction_data(table, options, target_kind, device, seed)


def movielens(
    *, version: Literal["100k", "1m", "latest-small"] = "100k", root: str = "~/.cache/ptlab/data",
    download: bool = False, batch_size: PositiveInt = 256, split: Split = "leave_last_out",
    val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1, split_seed: int = 0, ranking: Ranking = "full",
    sampled_negatives: PositiveInt = 99, num_negatives: PositiveInt = 1, target_kind: str, device: torch.device,
    seed: int,
) -> Data:
    """MovieLens ratings (GroupLens): 100k, 1M or latest-small, as implicit feedback or explicit ratings.

    Read from ``root/ml-100k/u.data``, ``root/ml-1m/ratings.dat`` or
    ``root/ml-latest-small/ratings.csv`` (titles from the files beside them), fetched from
    files.grouplens.org with ``download=true``. Licence (GroupLens): research use only, no
    redistribution; publications using it cite F. M. Harper and J. A. Konstan, "The MovieLens
    Datasets: History and Context", ACM TiiS 5(4), 2015.
    """
    _expect_interactions("movielens", target_kind)
    folder_name, file_name, read = MOVIELENS[str(version)]
    folder = dataset_folder(root, folder_name, [file_name], "movielens", download, [MOVIELENS_URL.format(folder_name)])
    options = Options(batch_size, split, val_fraction, test_fraction, split_seed, ranking, sampled_negatives,
                      num_negatives)
    return interaction_data(read(folder), options, target_kind, device, seed)


def interactions_csv(
    *, path: PathThatExists, user: str = "user", item: str = "item", rating: Optional[str] = None,
    timestamp: Optional[str] = None, batch_size: PositiveInt = 256, split: Split = "leave_last_out",
    val_fraction: Fraction = 0.1, test_fraction: Fraction = 0.1, split_seed: int = 0, ranking: Ranking = "full",
    sampled_negatives: PositiveInt = 99, num_negatives: PositiveInt = 1, target_kind: str, device: torch.device,
    seed: int,
) -> Data:
    """Your CSV of interactions: one (user, item[, rating, timestamp]) per row, ids any strings."""
    _expect_interactions("interactions_csv", target_kind)
    if target_kind == "rating" and rating is None:
        raise ConfigError("data.rating: no rating column is named, and objective=rating needs a rating column; "
                          "set data.rating=COLUMN")
    table = read_interactions_csv(Path(path).expanduser(), user, item, rating, timestamp)
    options = Options(batch_size, split, val_fraction, test_fraction, split_seed, ranking, sampled_negatives,
                      num_negatives)
    return interaction_data(table, options, target_kind, device, seed)


def interaction_data(table: Interactions, options: Options, target_kind: str, device: torch.device,
                     seed: int) -> Data:
    """Index, deduplicate and split ``table``, then batch it for ``target_kind`` ("ranking" or "rating")."""
    users, user_ids = index_ids(table.users)
    items, item_ids = index_ids(table.items)
    rows = latest_unique(users, items, table.timestamps, len(item_ids))
    if len(rows) < len(table):
        log.info("data: %d repeated (user, item) pairs keep only their last interaction", len(table) - len(rows))
    users, items = users[rows], items[rows]
    part, train_only = split_rows(users, len(user_ids), options)
    info = {"num_users": len(user_ids), "num_items": len(item_ids), "train_only_users": train_only,
            **{f"{name}_interactions": int((part == code).sum()) for code, name in enumerate(("train", "val", "test"))}}
    state = {"users": user_ids, "items": item_ids, "titles": [table.titles.get(i, "") for i in item_ids]}
    if target_kind == "ranking":
        info["ranking"] = "full" if options.ranking == "full" else f"sampled-{options.sampled_negatives}"
    log.info("data: %d users, %d items; %d train, %d val, %d test interactions%s", info["num_users"],
             info["num_items"], info["train_interactions"], info["val_interactions"], info["test_interactions"],
             "" if target_kind != "ranking" else
             "; full ranking: every item a user has not had is a candidate" if options.ranking == "full" else
             f"; sampled ranking (the NCF protocol, easier than full): the held-out items among "
             f"{options.sampled_negatives} sampled ones")
    if target_kind == "rating":
        ratings = table.ratings[rows]
        info["rating_mean"] = float(ratings[part == TRAIN].mean())
        splits = {name: (torch.as_tensor(users[part == code]), torch.as_tensor(items[part == code]),
                         torch.as_tensor(ratings[part == code], dtype=torch.float32))
                  for code, name in enumerate(("train", "val", "test"))}
        data = in_memory_splits(splits, options.batch_size, seed, device, info)
        data.state = state
        return data
    train, val, test = ranking_batches(users, items, part, len(user_ids), len(item_ids), options.ranking,
                                       options.sampled_negatives, options.split_seed, options.batch_size,
                                       options.num_negatives, seed, device)
    info.update(val_users=val.num_samples, test_users=test.num_samples)
    return Data(train, val, test, info, state=state)


def index_ids(raw: list[str]) -> tuple[np.ndarray, list[str]]:
    """(each row's index, the distinct ids in index order): sorted as numbers when all are integers, else as text."""
    unique, codes = np.unique(np.asarray(raw, dtype=str), return_inverse=True)
    names = unique.tolist()
    if all(_INTEGER.fullmatch(name) for name in names):
        order = sorted(range(len(names)), key=lambda k: (int(names[k]), names[k]))
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order))
        codes, names = place[codes], [names[k] for k in order]
    return codes.astype(np.int64).reshape(-1), names


def latest_unique(users: np.ndarray, items: np.ndarray, timestamps: Optional[np.ndarray],
                  num_items: int) -> np.ndarray:
    """Row numbers grouped by user in time order (then row order), each (user, item) pair at its last occurrence."""
    rows = np.arange(len(users))
    order = np.lexsort((rows, rows if timestamps is None else timestamps, users))  # the last key sorts first
    pairs = users[order] * num_items + items[order]
    _, last_from_end = np.unique(pairs[::-1], return_index=True)
    return order[np.sort(len(order) - 1 - last_from_end)]


def split_rows(users: np.ndarray, num_users: int, options: Options) -> tuple[np.ndarray, int]:
    """(each row's split — TRAIN, VAL or TEST —, the number of users kept wholly in train).

    ``users`` must be grouped by user in time order (as :func:`latest_unique` leaves them).
    """
    counts = np.bincount(users, minlength=num_users)
    position = np.arange(len(users)) - (np.cumsum(counts) - counts)[users]  # place within the user's rows
    if options.split == "leave_last_out":
        carve_order = counts[users] - 1 - position  # 0 for the latest
        held = counts >= 3
        num_test = num_val = held.astype(np.int64)
        rule = "leave_last_out holds out 2 of a user's interactions and keeps 1 for train"
    else:
        total = options.val_fraction + options.test_fraction
        if total >= 1:
            raise ConfigError(f"data.val_fraction + data.test_fraction: they add up to {total:g}, which leaves no "
                              "training interactions; make the sum less than 1")
        rng = np.random.default_rng(np.random.SeedSequence([options.split_seed % 2**64, 0]))
        shuffled = np.lexsort((rng.random(len(users)), users))
        carve_order = np.empty(len(users), dtype=np.int64)
        carve_order[shuffled] = position
        num_test = np.floor(options.test_fraction * counts + 0.5).astype(np.int64)
        num_val = np.floor(options.val_fraction * counts + 0.5).astype(np.int64)
        held = (num_test >= 1) & (num_val >= 1) & (counts - num_test - num_val >= 1)
        num_test, num_val = num_test * held, num_val * held
        rule = (f"split=random holds out round({options.val_fraction:g}·n) and round({options.test_fraction:g}·n) "
                "of a user's n interactions only when each and train get at least 1")
    part = np.where(carve_order < num_test[users], TEST,
                    np.where(carve_order < (num_test + num_val)[users], VAL, TRAIN)).astype(np.int8)
    train_only = int((~held).sum())
    log.info("data: %d of %d users have too few interactions to hold any out and stay wholly in train (%s)",
             train_only, num_users, rule)
    for code, name in ((VAL, "val"), (TEST, "test")):
        if not (part == code).any():
            fix = ("give users 3 or more interactions" if options.split == "leave_last_out"
                   else f"raise data.{name}_fraction or use data.split=leave_last_out")
            raise ConfigError(f"data.split: the {name} split is empty, since no user has enough interactions ({rule}); "
                              f"{fix}")
    return part, train_only


def known_items(data: Data, user: int) -> Tensor:
    """A mask over the items of the ones user index ``user`` had in any split of ``data`` (on the CPU)."""
    known = torch.zeros(data.info["num_items"], dtype=torch.bool)
    for split in (data.train, data.val, data.test):
        users, second = (t.cpu() for t in stored_rows(split)[:2])
        if second.dtype == torch.bool:  # an evaluation split of ranking data: (users, relevant masks, candidates)
            known |= second[users == user].any(0)
        else:
            known[second[users == user]] = True
    return known


def _expect_interactions(data_name: str, target_kind: str) -> None:
    expect_kind(data_name, target_kind, ("ranking", "rating"), "user–item interactions",
                "objective=ranking or objective=rating")
