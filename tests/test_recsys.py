"""task=recsys end to end: it recovers the planted taste, reports its baselines, evaluates, recommends, refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import ptlab
from ptlab.api import check
from conftest import read_metrics, run_ptlab

torch.set_num_threads(1)

# A smaller planted set than the default: seconds per run, the same structure.
SMALL = ["task=recsys", "data.num_users=300", "data.num_items=200", "trainer.max_epochs=8", "trainer.progress=plain"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One small CLI run of task=recsys (its run directory and metrics.json)."""
    cwd = tmp_path_factory.mktemp("recsys")
    run_dir = cwd / "run"
    run_ptlab("train", *SMALL, f"hydra.run.dir={run_dir}", cwd=cwd, check=True, timeout=300)
    return run_dir, read_metrics(run_dir)


def test_mf_recovers_the_planted_taste_far_beyond_popularity_and_reports_ease(trained) -> None:
    _, metrics = trained
    for name in ("hr@10", "ndcg@10", "recall@10"):
        assert {f"test/{name}", f"test/{name}_popularity", f"test/{name}_ease"} <= set(metrics)
    assert metrics["test/ndcg@10"] > 1.5 * metrics["test/ndcg@10_popularity"], metrics
    assert metrics["test/hr@10"] > 1.5 * metrics["test/hr@10_popularity"], metrics
    assert 0 < metrics["test/ndcg@10_ease"] <= 1 and metrics["test/hr@10"] == metrics["test/recall@10"]  # one held out


def test_eval_reproduces_the_test_metrics_from_the_best_checkpoint(trained) -> None:
    run_dir, metrics = trained
    out = run_dir / "eval.json"
    proc = run_ptlab("eval", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", f"out={out}", cwd=run_dir, check=True)
    again = json.loads(out.read_text())
    for name in ("test/hr@10", "test/ndcg@10", "test/loss"):
        assert again[name] == pytest.approx(metrics[name], abs=1e-6), proc.stdout


def test_recommend_prints_top_k_without_the_users_own_items(trained) -> None:
    run_dir, _ = trained
    ckpt = run_dir / "checkpoints" / "best.pt"
    proc = run_ptlab("recommend", f"ckpt={ckpt}", "user=u7", "k=5", "format=json", cwd=run_dir, check=True)
    picks = json.loads(proc.stdout)
    assert [p["rank"] for p in picks] == [1, 2, 3, 4, 5]
    scores = [p["score"] for p in picks]
    assert scores == sorted(scores, reverse=True)
    from ptlab.api import rebuild
    from ptlab.data.interactions import known_items

    _, run = rebuild(ckpt, device="cpu")

    user = run.data.state["users"].index("u7")
    had = {run.data.state["items"][i] for i in known_items(run.data, user).tolist()}
    assert had and not had & {p["item"] for p in picks}
    with torch.no_grad():  # the same items the model ranks first once the user's own are left out
        scores = run.model(torch.tensor([user])).squeeze(0)
    scores[known_items(run.data, user)] = float("-inf")
    assert [run.data.state["items"][i] for i in scores.topk(5).indices.tolist()] == [p["item"] for p in picks]
    table = run_ptlab("recommend", f"ckpt={ckpt}", "user=u7", "k=3", cwd=run_dir, check=True).stdout
    assert "top 3 for user u7" in table and picks[0]["item"] in table


def test_recommend_errors_are_one_line_with_exit_code_2(trained, tmp_path: Path) -> None:
    run_dir, _ = trained
    ckpt = run_dir / "checkpoints" / "best.pt"
    unknown = run_ptlab("recommend", f"ckpt={ckpt}", "user=nobody", cwd=tmp_path)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().splitlines() == [
        "ptlab: error: user: 'nobody' is not a user of this checkpoint's data (300 users, e.g. u1, u10, u100); "
        "give an id as it appears in the data"]
    missing = run_ptlab("recommend", f"ckpt={ckpt}", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("ptlab: error: user: required")


def test_recommend_refuses_a_checkpoint_of_another_task(tmp_path: Path) -> None:
    from ptlab.errors import ConfigError
    from ptlab.recommend import recommend

    ptlab.train(ptlab.compose(["task=linreg", "trainer.max_steps=1", "trainer.progress=plain"]), run_dir=tmp_path)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(ConfigError, match=r"^ckpt: .*last\.pt is a checkpoint of task=linreg, not of a recommender; "
                                          r"give a checkpoint of task=recsys$"):
        recommend(ckpt, "1")


def test_explicit_ratings_are_one_override_away(tmp_path: Path) -> None:
    """objective=rating alone picks val/rmse to monitor (the planted data has ratings too); here on a CSV."""
    assert ptlab.compose(["task=recsys", "objective=rating"]).checkpoint.monitor == "val/rmse"
    path = tmp_path / "ratings.csv"
    rows = ["customer,product,stars,when"]
    g = torch.Generator().manual_seed(0)
    taste = torch.randn(40, 3, generator=g) @ torch.randn(3, 30, generator=g)
    for u in range(40):
        for i in torch.randperm(30, generator=g)[:12].tolist():
            rows.append(f"c{u},p{i},{min(5.0, max(1.0, round(3 + float(taste[u, i]))))},{u * 100 + i}")
    path.write_text("\n".join(rows) + "\n")
    cfg = ptlab.compose(["task=recsys", "objective=rating", "data=interactions_csv", f"data.path={path}",
                         "data.user=customer", "data.item=product", "data.rating=stars", "data.timestamp=when",
                         "trainer.max_epochs=2", "trainer.progress=plain"])
    assert cfg.checkpoint.monitor == "val/rmse" and cfg.checkpoint.mode == "min"
    metrics = ptlab.train(cfg)
    assert {"test/rmse", "test/mae", "test/rmse_mean", "test/rmse_bias", "test/mae_bias"} <= set(metrics)


def test_a_csv_without_the_named_column_is_one_line_and_no_run_folder(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("user,product\n1,a\n2,b\n")
    proc = run_ptlab("train", "task=recsys", "data=interactions_csv", f"data.path={path}",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ptlab: error: data.item:") and "data.item=COLUMN" in lines[0]
    assert not (tmp_path / "run").exists()


def test_top_k_metric_names_go_through_hydra_overrides_and_sweeps() -> None:
    """`@` in val/hr@10 is a plain character to Hydra's override grammar: monitor, sweep and objective all read it."""
    from ptlab.hydra_support import first_of_each_sweep
    from ptlab.sweep.job import objective_value

    overrides = ["task=recsys", "model.dim=16,32", "checkpoint.monitor=val/hr@10", "objective.metrics=[hr@5,ndcg@20]"]
    assert first_of_each_sweep(overrides) == ["task=recsys", "model.dim=16", "checkpoint.monitor=val/hr@10",
                                              "objective.metrics=[hr@5,ndcg@20]"]
    cfg = ptlab.compose(["task=recsys", "checkpoint.monitor=val/ndcg@20", "objective.metrics=[hr@5,ndcg@20]"])
    check(cfg)
    assert cfg.sweep.objective == "val/ndcg@20" and objective_value({"val/ndcg@20": 0.25}, cfg.sweep.objective) == 0.25
    run = ptlab.build(ptlab.compose(["task=recsys", "data.num_users=50", "data.num_items=40",
                                     "objective.metrics=[hr@5,ndcg@20]", "checkpoint.monitor=val/ndcg@20"]))
    assert [(type(m).__name__, m.k) for m in run.metric_fns.values()] == [("HitRate", 5), ("NDCG", 20)]
