"""The experiment trackers: logger=[...,mlflow] and logger=[...,wandb], read back with MLflow's own client and from
W&B's own files; resume continues the same tracking run without a point logged twice; a missing package is one line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import run_ptlab
from ptlab.api import check
from ptlab.atomic import read_json
from ptlab.engine.callbacks import Callback
from ptlab.engine.throughput import SPEED_KEYS
from ptlab.errors import ConfigError
from ptlab.logging import wandb_files
from ptlab.logging.csv_logger import read_rows

torch.set_num_threads(1)

RUN = ["task=logreg", "trainer.max_epochs=1", "trainer.log_every_n_steps=3", "trainer.progress=plain"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracking server: MLflow's own default store, not one a developer's environment names; W&B's server
    address unreachable, so an offline run that tried the network would fail."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the test's client reads the run's file store too
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WANDB_MODE", raising=False)


def mlflow_run(run_dir: Path):
    """(MLflow's client on the run directory's store, the tracking run ptlab recorded there)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir / "mlruns").resolve().as_uri())
    return client, client.get_run(read_json(run_dir / "mlflow_run.json")["run_id"])


def mlflow_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    client, run = mlflow_run(run_dir)
    return {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in sorted(run.data.metrics)}


def wandb_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every W&B point of the run ptlab recorded, over all the processes that logged it, in order."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in wandb_files.history(run_dir / "wandb", read_json(run_dir / "wandb_run.json")["run_id"]):
        for key, value in row.items():
            if not key.startswith("_"):
                curves.setdefault(key, []).append((row["_step"], value))
    return curves


def csv_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in read_rows(run_dir / "metrics.csv"):
        for key, value in row.items():
            if "/" in key:
                curves.setdefault(key, []).append((int(row["step"]), float(value)))
    return curves


def computed(curves: dict[str, list]) -> dict[str, list]:
    """The curves a run computes (not the measured speeds and times, which differ between two runs)."""
    return {k: v for k, v in curves.items() if k.removeprefix("final/") not in (*SPEED_KEYS, "train_seconds")}


def test_mlflow_keeps_params_curves_final_metrics_and_artifacts_in_a_file_store_of_the_run(tmp_path: Path) -> None:
    cfg = ptlab.compose([*RUN, "logger=[csv,mlflow]"])
    metrics = ptlab.train(cfg, run_dir=tmp_path)
    client, run = mlflow_run(tmp_path)
    assert run.info.status == "FINISHED" and run.info.run_name == tmp_path.name
    assert client.get_experiment(run.info.experiment_id).name == "logreg"  # the task's name by default
    params = run.data.params
    assert (params["trainer.log_every_n_steps"], params["optimizer.lr"]) == ("3", str(cfg.optimizer.lr))
    assert params["model/parameters"] == "31"  # 30 features + bias
    curves = mlflow_curves(tmp_path)
    assert {k: v for k, v in curves.items() if not k.startswith("final/")} == csv_curves(tmp_path)
    assert [step for step, _ in curves["val/acc"]] == [13] and curves["test/acc"] == [(13, metrics["test/acc"])]
    assert {k.removeprefix("final/"): v[-1][1] for k, v in curves.items() if k.startswith("final/")} == metrics
    artifacts = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))
    assert json.loads((artifacts / "metrics.json").read_text()) == read_json(tmp_path / "metrics.json")
    assert json.loads((artifacts / "model_summary.json").read_text()) == read_json(tmp_path / "model_summary.json")


def test_a_metric_name_mlflow_refuses_is_logged_with_its_at_spelled_out(tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ptlab.logging.mlflow_logger import mlflow_name

    client = MlflowClient((tmp_path / "mlruns").as_uri())
    run_id = client.create_run(client.create_experiment("recsys")).info.run_id
    with pytest.raises(MlflowException, match="Names may only contain"):
        client.log_metric(run_id, "val/ndcg@10", 0.5, step=1)
    assert mlflow_name("val/ndcg@10") == "val/ndcg_at_10"
    client.log_metric(run_id, mlflow_name("val/ndcg@10"), 0.5, step=1)
    assert client.get_run(run_id).data.metrics == {"val/ndcg_at_10": 0.5}


def test_wandb_writes_an_offline_run_with_the_logged_curves_config_and_final_summary(tmp_path: Path) -> None:
    metrics = ptlab.train(ptlab.compose([*RUN, "logger=[csv,wandb]"]), run_dir=tmp_path)
    run_id = read_json(tmp_path / "wandb_run.json")["run_id"]
    (folder,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")  # offline by default, in the run directory
    assert wandb_curves(tmp_path) == csv_curves(tmp_path)
    records = list(wandb_files.records(folder / f"run-{run_id}.wandb"))
    config = {item.key: json.loads(item.value_json) for r in records if r.HasField("config") for item in r.config.update}
    assert config["trainer.log_every_n_steps"] == 3 and config["model/parameters"] == 31
    summary = {item.key: json.loads(item.value_json) for r in records if r.HasField("summary")
               for item in r.summary.update}
    assert {k: summary[k] for k in metrics} == metrics  # the final metrics (val/*: the best checkpoint's)
    assert [r.exit.exit_code for r in records if r.HasField("exit")] == [0]


def test_the_transaction_log_reader_reads_what_wandb_wrote_and_stops_at_a_torn_record(tmp_path: Path) -> None:
    import wandb

    run = wandb.init(mode="offline", dir=str(tmp_path), project="reader", settings=wandb.Settings(silent=True))
    logged = [{"train/loss": 1 / step, "note": "x" * (step % 50)} for step in range(1, 801)]
    for step, values in enumerate(logged, 1):
        run.log(values, step=step)
    run.finish()
    wandb.teardown()  # W&B's service writes the files after finish() returns; this waits for it
    (path,) = (tmp_path / "wandb").glob(f"offline-run-*-{run.id}/run-{run.id}.wandb")
    assert path.stat().st_size > 3 * wandb_files.BLOCK  # records span blocks
    rows = wandb_files.history(tmp_path / "wandb", run.id)
    assert [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows] == logged
    assert [row["_step"] for row in rows] == list(range(1, 801))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 3])  # as a kill mid-write leaves it
    torn = wandb_files.history(tmp_path / "wandb", run.id)
    assert 0 < len(torn) < len(rows) and torn == rows[: len(torn)]


class Killed(BaseException):
    """The process dies here (raised past the trainer, as nothing catches a SIGKILL)."""


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            raise Killed


# 26 steps; logged at 3, 6, 9, 12, 13 (epoch end, validated), ...; checkpoints at 5, 10, 13, ...
RESUMED = [*RUN, "trainer.max_epochs=2", "checkpoint.every_n_steps=5", "logger=[csv,mlflow,wandb]"]


def test_resume_continues_both_tracking_runs_and_logs_no_point_twice(tmp_path: Path) -> None:
    """Killed at step 8 after the checkpoint of step 5: the resumed run trains 6..8 again and logs step 6 again
    with the same values; the trackers keep it once, and the curves equal those of a run never stopped."""
    from ptlab.engine.run_callbacks import callbacks_for_run
    from ptlab.engine.trainer import Trainer

    reference, run_dir = tmp_path / "reference", tmp_path / "killed"
    ptlab.train(ptlab.compose(RESUMED), run_dir=reference)
    run = ptlab.build(ptlab.compose(RESUMED))
    with pytest.raises(Killed):
        Trainer(run, [*callbacks_for_run(run, run_dir), KillAt(8)]).fit()
    assert read_json(run_dir / "checkpoints" / "manifest.json")["files"]["last.pt"]["step"] == 5
    assert [s for s, _ in mlflow_curves(run_dir)["train/loss"]] == [3, 6]  # step 6: after the checkpoint
    assert [s for s, _ in wandb_curves(run_dir)["train/loss"]] == [3, 6]
    ids = read_json(run_dir / "mlflow_run.json"), read_json(run_dir / "wandb_run.json")

    ptlab.train(ptlab.compose([*RESUMED, "resume=auto"]), run_dir=run_dir)
    assert (read_json(run_dir / "mlflow_run.json"), read_json(run_dir / "wandb_run.json")) == ids  # the same runs
    assert mlflow_run(run_dir)[1].info.status == "FINISHED"
    assert computed(mlflow_curves(run_dir)) == computed(mlflow_curves(reference))
    assert computed(wandb_curves(run_dir)) == computed(wandb_curves(reference)) == computed(csv_curves(reference))
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2  # one per process, one W&B run id

    ptlab.train(ptlab.compose(RESUMED), run_dir=run_dir)  # not resumed: a fresh run, new tracking runs
    new = read_json(run_dir / "mlflow_run.json")["run_id"], read_json(run_dir / "wandb_run.json")["run_id"]
    assert new[0] != ids[0]["run_id"] and new[1] != ids[1]["run_id"]
    assert computed(mlflow_curves(run_dir)) == computed(mlflow_curves(reference))


def test_a_missing_tracker_package_is_named_with_its_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` finds in an environment without it
    with pytest.raises(ConfigError) as caught:
        check(ptlab.compose(["task=logreg", "logger=[tensorboard,wandb]"]))
    assert str(caught.value) == "logger.wandb: needs the wandb package, which is not installed; pip install 'ptlab[track]'"


def test_a_missing_tracker_package_is_one_line_and_exit_2_before_the_run_folder_is_made(tmp_path: Path) -> None:
    hidden = tmp_path / "without_mlflow"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\n\nsys.modules['mlflow'] = None  # as if not installed\n")
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH")) if p)
    proc = run_ptlab("train", "task=logreg", "logger=[tensorboard,mlflow]", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=tmp_path, env={"PYTHONPATH": path})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "ptlab: error: logger.mlflow: needs the mlflow package, which is not installed; pip install 'ptlab[track]'"]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_kill_9_then_resume_auto_leaves_each_tracked_point_once(tmp_path: Path) -> None:
    """Real SIGKILLs of the CLI: MLflow (written synchronously) ends with the curves of a run never stopped. W&B
    writes its log through a buffer that a SIGKILL loses, and a step before the checkpoint is not trained again,
    so its curves may have gaps; no point is there twice, and each equals the uninterrupted run's."""
    from test_resume import COMMON, TASKS, start, wait_for_step

    args = [*TASKS["logreg"], *COMMON, "logger=[csv,mlflow,wandb]"]
    reference, run_dir = tmp_path / "reference", tmp_path / "killed"
    ptlab.train(ptlab.compose(args), run_dir=reference)
    landed = -1
    for _ in range(2):
        proc = start([*args, "resume=auto", f"hydra.run.dir={run_dir}"], tmp_path)
        landed = wait_for_step(run_dir, proc, past=landed)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    run_ptlab("train", *args, "resume=auto", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=True)
    assert computed(mlflow_curves(run_dir)) == computed(mlflow_curves(reference))
    expected = computed(wandb_curves(reference))
    for key, points in computed(wandb_curves(run_dir)).items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)) and set(points) <= set(expected[key]), key
        assert points[-1] == expected[key][-1], key  # the last process logged to the end
