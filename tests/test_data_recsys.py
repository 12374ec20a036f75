"""Recommender data on tiny files in the real on-disk formats: MovieLens 100k / 1M / latest-small and a CSV;
the per-user splits, the candidate masks, the per-epoch negatives and the planted generator."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from ptlab.data import downloads
from ptlab.data.interaction_batches import InteractionBatches
from ptlab.data.interactions import interactions_csv, known_items, movielens, planted
from ptlab.data.loaders import Data
from ptlab.data.planted import planted_interactions
from ptlab.errors import ConfigError

torch.set_num_threads(1)

CPU = torch.device("cpu")
INJECTED = {"device": CPU, "seed": 0}
SMALL_PLANTED = {"num_users": 60, "num_items": 150, "mean_interactions": 10}

# (user, item, rating, timestamp) in file order; user 10 sorts after user 2 only as a number
ML_ROWS = [(1, 3, 4, 881250949), (2, 1, 5, 881250950), (1, 1, 3, 881250951), (10, 2, 1, 881250952),
           (2, 3, 2, 881250953), (1, 2, 5, 881250954), (10, 3, 4, 881250955), (2, 2, 3, 881250956),
           (10, 1, 2, 881250957)]
ML_TITLES = {1: "Toy Story (1995)", 2: "Misérables, Les (1995)", 3: "American President, The (1995)"}


def build(builder, target_kind: str = "ranking", **config) -> Data:
    return builder(**config, target_kind=target_kind, **INJECTED)


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_ml_100k(root: Path, titles: bool = True) -> Path:
    folder = root / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ML_ROWS), encoding="ascii")
    if titles:
        genres = "|".join("0" * 19)
        lines = [f"{i}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?x|{genres}\n"
                 for i, title in ML_TITLES.items()]
        (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    return folder


def write_ml_1m(root: Path) -> Path:
    folder = root / "ml-1m"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ML_ROWS), encoding="ascii")
    lines = [f"{i}::{title}::Comedy|Drama\n" for i, title in ML_TITLES.items()]
    (folder / "movies.dat").write_bytes("".join(lines).encode("latin-1"))
    return folder


def write_ml_latest(root: Path) -> Path:
    folder = root / "ml-latest-small"
    folder.mkdir(parents=True)
    rows = [f"{u},{i},{r - 0.5},{t}" for u, i, r, t in ML_ROWS]  # half stars
    write_csv(folder / "ratings.csv", ["userId,movieId,rating,timestamp", *rows])
    write_csv(folder / "movies.csv", ["movieId,title,genres", *(f'{i},"{title}",Comedy|Romance'
                                                               for i, title in ML_TITLES.items())])
    return folder


def relevant_items(data: Data, split: str, user: str) -> set[str]:
    """The raw item ids held out for raw user ``user`` in ``split`` (ranking data)."""
    users, relevant, _ = getattr(data, split).tensors
    row = users.tolist().index(data.state["users"].index(user))
    return {data.state["items"][i] for i in torch.nonzero(relevant[row]).squeeze(1).tolist()}


def candidate_items(data: Data, split: str, user: str) -> set[str]:
    users, _, candidates = getattr(data, split).tensors
    row = users.tolist().index(data.state["users"].index(user))
    return {data.state["items"][i] for i in torch.nonzero(candidates[row]).squeeze(1).tolist()}


def train_items(data: Data, user: str) -> set[str]:
    users, items = data.train.tensors[:2]
    index = data.state["users"].index(user)
    return {data.state["items"][i] for i in items[users == index].tolist()}


# --- the real formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("version, write", [("100k", write_ml_100k), ("1m", write_ml_1m),
                                            ("latest-small", write_ml_latest)])
def test_movielens_formats_read_ids_ratings_and_titles(tmp_path: Path, version: str, write) -> None:
    write(tmp_path)
    data = build(movielens, "rating", version=version, root=str(tmp_path), batch_size=4)
    assert data.state["users"] == ["1", "2", "10"]  # integer ids sort as numbers
    assert data.state["items"] == ["1", "2", "3"]
    assert data.state["titles"] == list(ML_TITLES.values())  # latin-1 (100k, 1M) and quoted UTF-8 (latest) alike
    assert data.info["num_users"] == 3 and data.info["num_items"] == 3
    half = 0.5 if version == "latest-small" else 0.0
    users, items, ratings = data.test.tensors  # leave_last_out: each user's latest
    assert sorted(zip(users.tolist(), items.tolist(), ratings.tolist())) == [
        (0, 1, 5 - half), (1, 1, 3 - half), (2, 0, 2 - half)]
    assert ratings.dtype == torch.float32 and users.dtype == torch.long
    assert data.info["rating_mean"] == pytest.approx(np.mean([4, 5, 1]) - half)  # train: the first of each user
    assert data.info["train_interactions"] == 3 and data.info["val_interactions"] == 3


def test_movielens_titles_are_optional(tmp_path: Path) -> None:
    write_ml_100k(tmp_path, titles=False)
    data = build(movielens, root=str(tmp_path))
    assert data.state["titles"] == ["", "", ""]
    assert all(isinstance(v, str) for values in data.state.values() for v in values)


def test_movielens_downloads_grouplens_zip_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^data\.root: movielens files ratings\.dat are not in .*ml-1m; "
                                          r"pass data\.download=true"):
        build(movielens, version="1m", root=str(tmp_path))
    fetched = []

    def fake_fetch(sources: list[str], root: str, data_name: str) -> None:
        fetched.append(sources)
        write_ml_1m(Path(root))

    monkeypatch.setattr(downloads, "fetch", fake_fetch)
    build(movielens, version="1m", root=str(tmp_path), download=True)
    build(movielens, version="1m", root=str(tmp_path), download=True)  # already there: no second download
    assert fetched == [["https://files.grouplens.org/datasets/movielens/ml-1m.zip"]]


def test_csv_with_string_ids_sorts_them_as_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "clicks.csv", ["customer,product,when",
                                               *(f"{u},{i},{t}" for t, (u, i) in enumerate(
                                                   [("bob", "sku-9"), ("alice", "sku-10"), ("bob", "sku-10"),
                                                    ("alice", "sku-9"), ("bob", "x1"), ("alice", "x1"), ("7", "x1")]))])
    data = build(interactions_csv, path=str(path), user="customer", item="product", timestamp="when")
    assert data.state["users"] == ["7", "alice", "bob"]  # not all integers: text order
    assert data.state["items"] == ["sku-10", "sku-9", "x1"]
    assert data.state["titles"] == ["", "", ""]
    assert relevant_items(data, "test", "alice") == {"x1"} and relevant_items(data, "val", "bob") == {"sku-10"}
    assert data.info["num_users"] == 3 and data.info["train_only_users"] == 1  # "7" has one interaction


# --- splits -------------------------------------------------------------------------------------

SPLIT_ROWS = ["user,item,t",
              "alice,a,3", "alice,b,1", "alice,c,2", "alice,d,5", "alice,e,4",  # in time order: b c a e d
              "bob,x,1", "bob,y,1", "bob,z,1",  # one time: row order decides
              "carol,p,1", "carol,q,2"]  # fewer than 3: train only


def test_leave_last_out_holds_out_the_latest_and_the_one_before(tmp_path: Path, caplog) -> None:
    path = write_csv(tmp_path / "events.csv", SPLIT_ROWS)
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(interactions_csv, path=str(path), timestamp="t")
    assert relevant_items(data, "test", "alice") == {"d"} and relevant_items(data, "val", "alice") == {"e"}
    assert train_items(data, "alice") == {"a", "b", "c"}
    assert relevant_items(data, "test", "bob") == {"z"} and relevant_items(data, "val", "bob") == {"y"}
    assert train_items(data, "carol") == {"p", "q"}
    assert data.info["train_only_users"] == 1 and data.info["val_users"] == data.info["test_users"] == 2
    assert data.info["train_interactions"] == 6 and data.info["test_interactions"] == 2
    told = [r.getMessage() for r in caplog.records if "wholly in train" in r.getMessage()]
    assert len(told) == 1 and told[0].startswith("data: 1 of 3 users")


def test_without_timestamps_row_order_is_time(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", [row.rsplit(",", 1)[0] for row in SPLIT_ROWS])
    data = build(interactions_csv, path=str(path))
    assert relevant_items(data, "test", "alice") == {"e"} and relevant_items(data, "val", "alice") == {"d"}


def test_repeated_pairs_keep_the_latest(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", ["user,item,t,stars",
                                               "u,a,1,1", "u,b,2,2", "u,a,5,3", "u,c,3,4",  # a's later one stays
                                               "v,x,1,1", "v,x,1,5", "v,y,0,2", "v,z,0,3"])  # same time: the later row
    data = build(interactions_csv, path=str(path), timestamp="t")
    assert relevant_items(data, "test", "u") == {"a"} and relevant_items(data, "val", "u") == {"c"}
    assert data.info["train_interactions"] == 2
    rated = build(interactions_csv, "rating", path=str(path), timestamp="t", rating="stars")
    users, items, ratings = rated.test.tensors
    assert ratings[users == rated.state["users"].index("v")].tolist() == [5.0]


def test_random_split_carves_rounded_fractions_per_user(tmp_path: Path) -> None:
    rows = ["user,item"] + [f"many,i{k}" for k in range(20)] + [f"few,i{k}" for k in range(4)]
    path = write_csv(tmp_path / "events.csv", rows)

    def split(split_seed: int) -> Data:
        return build(interactions_csv, path=str(path), split="random", val_fraction=0.2, test_fraction=0.1,
                     split_seed=split_seed)

    data = split(0)
    assert len(relevant_items(data, "val", "many")) == 4 and len(relevant_items(data, "test", "many")) == 2
    assert len(train_items(data, "many")) == 14
    assert train_items(data, "few") == {"i0", "i1", "i2", "i3"}  # round(0.4) = 0 test items: all in train
    assert data.info["train_only_users"] == 1 and data.info["test_users"] == 1
    assert relevant_items(split(0), "test", "many") == relevant_items(data, "test", "many")
    assert any(relevant_items(split(s), "test", "many") != relevant_items(data, "test", "many") for s in (1, 2))


# --- evaluation candidates ---------------------------------------------------------------------

def test_full_ranking_candidates_leave_out_what_the_user_had_before(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", SPLIT_ROWS)
    data = build(interactions_csv, path=str(path), timestamp="t")
    every = set(data.state["items"])
    assert candidate_items(data, "val", "alice") == every - {"a", "b", "c"}  # the test item d is a candidate
    assert candidate_items(data, "test", "alice") == every - {"a", "b", "c", "e"}
    for split in ("val", "test"):
        users, relevant, candidates = getattr(data, split).tensors
        assert relevant.dtype == candidates.dtype == torch.bool
        assert not (relevant & ~candidates).any() and relevant.any(1).all()
    assert "carol" not in [data.state["users"][u] for u in data.test.tensors[0].tolist()]


def test_sampled_candidates_are_the_held_out_plus_never_seen_items() -> None:
    def sampled(split_seed: int, sampled_negatives: int = 99) -> Data:
        return build(planted, **SMALL_PLANTED, ranking="sampled", split_seed=split_seed,
                     sampled_negatives=sampled_negatives)

    data = sampled(0)
    users, relevant, candidates = data.test.tensors
    seen = torch.zeros_like(candidates)
    tu, ti = data.train.tensors
    lookup = {u: row for row, u in enumerate(users.tolist())}
    for u, i in zip(tu.tolist(), ti.tolist()):
        seen[lookup[u], i] = True
    val_users, val_relevant, _ = data.val.tensors
    seen[[lookup[u] for u in val_users.tolist()]] |= val_relevant
    others, never = candidates & ~relevant, ~(seen | relevant)
    assert (relevant & ~candidates).sum() == 0
    assert torch.equal(others.sum(1), never.sum(1).clamp(max=99))  # 99, or all the never-seen items when fewer
    assert (others.sum(1) == 99).float().mean() > 0.9
    assert not (others & ~never).any()  # never an item the user had in any split
    assert torch.equal(sampled(0).test.tensors[2], candidates)
    assert not torch.equal(sampled(1).test.tensors[2], candidates)
    _, few_relevant, few = sampled(0, sampled_negatives=140).test.tensors
    assert torch.equal(few & ~few_relevant, never)  # fewer never-seen items than asked: all of them


# --- training negatives ------------------------------------------------------------------------

def rows_of(batches) -> list[tuple[int, ...]]:
    """Every (user, item, negative, …) row of ``batches``, in order."""
    return [tuple(row) for batch in batches for row in torch.cat([batch[0][:, None], batch[1][:, None], batch[2]],
                                                                  1).tolist()]


def test_negatives_are_items_the_user_did_not_have_in_training() -> None:
    data = build(planted, **SMALL_PLANTED, num_negatives=4, batch_size=32)
    assert isinstance(data.train, InteractionBatches)
    users, items = data.train.tensors
    had = torch.zeros(data.info["num_users"], data.info["num_items"], dtype=torch.bool)
    had[users, items] = True
    for epoch in range(3):
        for batch_users, batch_items, negatives in data.train.batches(epoch):
            assert negatives.shape == (len(batch_users), 4) and negatives.dtype == torch.long
            assert had[batch_users, batch_items].all()
            assert not had[batch_users[:, None], negatives].any()


def test_negatives_are_a_function_of_seed_and_epoch_and_resume_exactly() -> None:
    data = build(planted, **SMALL_PLANTED, num_negatives=2, batch_size=32)
    again = build(planted, **SMALL_PLANTED, num_negatives=2, batch_size=32)
    epoch_1 = list(data.train.batches(1))
    assert rows_of(epoch_1) == rows_of(again.train.batches(1))
    assert torch.equal(data.train.negatives(1), again.train.negatives(1))
    assert not torch.equal(data.train.negatives(1), data.train.negatives(2))
    assert not torch.equal(data.train.negatives(1), planted(**SMALL_PLANTED, num_negatives=2, target_kind="ranking",
                                                            device=CPU, seed=1).train.negatives(1))
    assert rows_of(data.train.batches(1, 5)) == rows_of(epoch_1[5:])
    assert len(epoch_1) == len(data.train) and list(data.train.batches(1, len(data.train))) == []


def test_a_shard_takes_its_share_of_every_global_batch() -> None:
    data = build(planted, **SMALL_PLANTED, num_negatives=2, batch_size=16)
    whole = list(data.train.shard(0, 1, 16).batches(3))
    shards = [data.train.shard(rank, 2, 8) for rank in (0, 1)]
    assert all(isinstance(s, InteractionBatches) for s in shards)
    parts = [list(s.batches(3)) for s in shards]
    assert len(parts[0]) == len(parts[1]) == len(whole)
    for index, batch in enumerate(whole):  # the same pairs with the same negatives (rows are distinct pairs)
        assert set(rows_of([parts[0][index]]) + rows_of([parts[1][index]])) == set(rows_of([batch]))
    assert sum(s.share(len(whole) - 1) for s in shards) == 2  # the last, odd-sized global batch weighs 1 in all


def test_known_items_are_every_split_of_the_user(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", [row + ",4" if k else row + ",stars"
                                               for k, row in enumerate(SPLIT_ROWS)])
    for kind, extra in (("ranking", {}), ("rating", {"rating": "stars"})):
        data = build(interactions_csv, kind, path=str(path), timestamp="t", **extra)
        alice = data.state["users"].index("alice")
        known = {data.state["items"][i] for i in torch.nonzero(known_items(data, alice)).squeeze(1).tolist()}
        assert known == {"a", "b", "c", "d", "e"}


# --- the planted generator ---------------------------------------------------------------------

def test_planted_is_a_function_of_generator_seed() -> None:
    table, truth = planted_interactions(**SMALL_PLANTED, generator_seed=3)
    again, truth_again = planted_interactions(**SMALL_PLANTED, generator_seed=3)
    other, _ = planted_interactions(**SMALL_PLANTED, generator_seed=4)
    assert table.users == again.users and table.items == again.items
    assert np.array_equal(truth.item_factors, truth_again.item_factors)
    assert table.items != other.items
    per_user: dict[str, list[float]] = {}
    for user, t in zip(table.users, table.timestamps):
        per_user.setdefault(user, []).append(t)
    assert len(per_user) == 60 and all(times == list(range(len(times))) and len(times) >= 3
                                       for times in per_user.values())
    assert len(set(zip(table.users, table.items))) == len(table)  # without replacement
    assert np.array_equal(table.ratings, again.ratings) and table.titles == {}


def test_planted_true_scores_beat_popularity_on_held_out_items() -> None:
    config = {"num_users": 943, "num_items": 1682, "temperature": 0.7}
    _, truth = planted_interactions(**config)
    data = build(planted, **config)
    assert data.info["num_users"] == 943 and data.info["test_users"] == 943
    users, relevant, candidates = data.test.tensors
    train_users, train_items = data.train.tensors
    true = torch.as_tensor(truth.scores([data.state["users"][u] for u in users.tolist()], data.state["items"]))
    popular = torch.bincount(train_items, minlength=data.info["num_items"]).double().expand(len(users), -1)

    def hit_rate(scores: torch.Tensor) -> float:
        top = scores.masked_fill(~candidates, float("-inf")).topk(10, dim=1).indices
        return relevant.gather(1, top).any(1).double().mean().item()

    assert hit_rate(true) > hit_rate(popular) + 0.05 > hit_rate(torch.rand(true.shape)) + 0.1  # 0.36, 0.24, 0.003


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("lines, config, message", [
    (["user,item,t", "a,x,1"], {"user": "uid"},
     r"^data\.user: column 'uid' is not in .*e\.csv \(its columns: user, item, t\); set data\.user=COLUMN$"),
    (["user,item,t", "a,x,1"], {"item": "sku"}, r"^data\.item: column 'sku' is not in .*; set data\.item=COLUMN$"),
    (["user,item,t", "a,x,1"], {"timestamp": "when"}, r"^data\.timestamp: column 'when' is not in .*"),
    (["user,item,t", "a,x,1", "a,y,soon"], {"timestamp": "t"},
     r"^data\.timestamp: column 't' of .*e\.csv is not a number on line 3 \('soon'\); fix that line, "
     r"or set data\.timestamp=null$"),
    (["user,item,t", "a,x,1", "a,y"], {}, r"^data\.path: .*e\.csv line 3 has 2 fields, not 3; fix that line$"),
    (["user,item,t", "a,,1"], {}, r"^data\.item: column 'item' of .* is empty on line 2; give every row an id there$"),
    (["user,item,t"], {}, r"^data\.path: .*e\.csv has no data rows; give a file with one interaction per row$"),
    ([], {}, r"^data\.path: .*e\.csv has no data rows"),
])
def test_csv_errors_name_the_key(tmp_path: Path, lines: list[str], config: dict, message: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        build(interactions_csv, path=str(path), **config)


def test_rating_errors_name_the_key(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["user,item,stars", "a,x,4", "a,y,five"])
    with pytest.raises(ConfigError, match=r"^data\.rating: no rating column is named, and objective=rating needs a "
                                          r"rating column; set data\.rating=COLUMN$"):
        build(interactions_csv, "rating", path=str(path))
    with pytest.raises(ConfigError, match=r"^data\.rating: column 'score' is not in "):
        build(interactions_csv, "rating", path=str(path), rating="score")
    with pytest.raises(ConfigError, match=r"^data\.rating: column 'stars' of .* is not a number on line 3 \('five'\)"):
        build(interactions_csv, "rating", path=str(path), rating="stars")


def test_objectives_the_data_cannot_serve_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", SPLIT_ROWS)
    with pytest.raises(ConfigError, match=r"^data=interactions_csv holds user–item interactions but the objective "
                                          r"reads classification data; use objective=ranking or objective=rating$"):
        build(interactions_csv, "classification", path=str(path))
    with pytest.raises(ConfigError, match=r"^data=planted holds user–item interactions but the objective reads "
                                          r"regression data"):
        build(planted, "regression")
    with pytest.raises(ConfigError, match=r"^data=movielens holds user–item interactions"):
        build(movielens, "regression", root=str(tmp_path))


def test_split_errors_name_the_key(tmp_path: Path) -> None:
    short = write_csv(tmp_path / "short.csv", ["user,item", "a,x", "a,y", "b,x"])
    with pytest.raises(ConfigError, match=r"^data\.split: the val split is empty, since no user has enough "
                                          r"interactions \(leave_last_out .*\); give users 3 or more interactions$"):
        build(interactions_csv, path=str(short))
    many = write_csv(tmp_path / "many.csv", ["user,item"] + [f"a,i{k}" for k in range(4)])
    with pytest.raises(ConfigError, match=r"^data\.split: the val split is empty, .*split=random.*; raise "
                                          r"data\.val_fraction or use data\.split=leave_last_out$"):
        build(interactions_csv, path=str(many), split="random")
    with pytest.raises(ConfigError, match=r"^data\.val_fraction \+ data\.test_fraction: they add up to 1\.1, "
                                          r"which leaves no training interactions; make the sum less than 1$"):
        build(interactions_csv, path=str(many), split="random", val_fraction=0.5, test_fraction=0.6)


def test_planted_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^data\.mean_interactions: 2 is below data\.min_interactions \(3\); "
                                          r"make it at least that$"):
        build(planted, mean_interactions=2)
    with pytest.raises(ConfigError, match=r"^data\.min_interactions: 11 interactions per user need as many items, "
                                          r"and data\.num_items is 10; raise data\.num_items or lower "
                                          r"data\.min_interactions$"):
        build(planted, num_items=10, min_interactions=11)


@pytest.mark.parametrize("version, name, content, message", [
    ("100k", "u.data", "1\t2\t3\n", r"^data\.root: .*u\.data line 1 has 3 fields, not 4; fix that line$"),
    ("1m", "ratings.dat", "1::2::x::881250949\n",
     r"^data\.root: column 'Rating' of .*ratings\.dat is not a number on line 1 \('x'\); fix that line$"),
    ("1m", "ratings.dat", "", r"^data\.root: .*ratings\.dat has no data rows"),
    ("latest-small", "ratings.csv", "user,item,rating,timestamp\n1,2,3,4\n",
     r"^data\.root: .*ratings\.csv starts with user,item,rating,timestamp, not MovieLens's header "
     r"userId,movieId,rating,timestamp; delete .*ml-latest-small and pass data\.download=true$"),
    ("100k", "u.item", "1 Toy Story\n", r"^data\.root: .*u\.item line 1 is not id\|title\|release date\|\.\.\.; fix "
                                        r"that line or delete the file$"),
    ("1m", "movies.dat", "1\n", r"^data\.root: .*movies\.dat line 1 is not MovieID::Title::Genres"),
    ("latest-small", "movies.csv", "id,name\n1,x\n",
     r"^data\.root: .*movies\.csv does not start with MovieLens's header movieId,title,genres; fix it or delete"),
    ("latest-small", "movies.csv", "movieId,title,genres\n1\n",
     r"^data\.root: .*movies\.csv line 2 has 1 field, not movieId,title,genres; fix that line or delete the file$"),
])
def test_damaged_movielens_files_name_data_root(tmp_path: Path, version: str, name: str, content: str,
                                                message: str) -> None:
    folder = {"100k": write_ml_100k, "1m": write_ml_1m, "latest-small": write_ml_latest}[version](tmp_path)
    (folder / name).write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match=message):
        build(movielens, version=version, root=str(tmp_path))


def test_planted_ratings_follow_the_planted_taste() -> None:
    """r = clip(round(3 + θᵤ·φᵢ + ε), 1, 5): stars in 1..5 that rise with the true taste, the same picks as without."""
    table, truth = planted_interactions(**{k: v for k, v in SMALL_PLANTED.items()})
    assert set(np.unique(table.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    taste = np.array([truth.scores([u], [i])[0, 0] - truth.popularity * truth.log_popularity[int(i[1:]) - 1]
                      for u, i in zip(table.users[:300], table.items[:300])])
    assert np.corrcoef(taste, table.ratings[:300])[0, 1] > 0.6  # ε and the rounding blur it
    assert np.abs(np.clip(np.round(3 + taste), 1, 5) - table.ratings[:300]).mean() < 0.5
    rated = build(planted, "rating", **SMALL_PLANTED)
    users, items, ratings = rated.train.tensors
    assert ratings.dtype == torch.float32 and len(ratings) == rated.info["train_interactions"]

