"""scripts/gpu_check.py on a machine without a GPU: its code paths at tiny budgets, and the rules it judges by."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import ptlab
from conftest import REPO, subprocess_env

SCRIPT = REPO / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu_check = load_script()


def run_script(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env or subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def table_rows(stdout: str) -> dict[str, str]:
    """Row name → status, from the printed table (between its dashed rule and the notes)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[-1]
    return rows


def context(tmp_path: Path, tiny: bool = True, device: str = "cpu", gpu: str = "cpu"):
    return gpu_check.Context(device, tiny, tmp_path, {}, gpu)


@pytest.mark.slow  # 15 s of compile and training; CI runs it (make test-slow)
def test_a_tiny_cpu_run_of_the_benchmark_config_counts_syncs_per_step(tmp_path: Path) -> None:
    """The fast end-to-end path: the script, the benchmark config with compile (dynamo on aot_eager) trained
    in the probe's process, its metrics.json read back, the table written. Every row: the slow test below."""
    out = tmp_path / "out"
    proc = run_script("--device", "cpu", "--tiny", "--only", "char-gpt", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_rows(proc.stdout) == {"char-gpt": "ok"}
    syncs = json.loads((out / "char-gpt.syncs.json").read_text())
    assert [s["step"] for s in syncs["per_step"]] == list(range(1, 7))  # the probe saw every step of the run
    assert [s["step"] for s in syncs["per_step"] if s["logging_point"]] == [2, 4, 6]
    metrics = json.loads((out / "char-gpt" / "metrics.json").read_text())
    assert metrics["step"] == 6
    assert set(gpu_check.expected_telemetry("transformer", "bf16", context(out))) <= set(metrics)
    assert (out / "gpu_check.txt").read_text() in proc.stdout


@pytest.mark.slow
def test_a_tiny_cpu_run_of_every_kind_of_row(tmp_path: Path) -> None:
    """Every kind of row's code path (a task in bf16, two players, compile, torchrun, SIGTERM → 143 → resume=auto,
    the benchmark; the probe: the fast test above), with the telemetry required. The other tasks' rows run the
    same code as cnn's; they are left out to keep CI's time."""
    out = tmp_path / "out"
    proc = run_script("--device", "cpu", "--tiny", "--only", "gan,cnn,transformer-compile", "--out", str(out),
                      timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_rows(proc.stdout) == {"gan": "ok", "cnn": "ok", "cnn-fp16": "skip", "transformer-compile": "ok",
                                       "torchrun": "ok", "resume": "ok", "bench-cnn": "ok"}
    notes = {row["name"]: " ".join(row["notes"]) for row in json.loads((out / "gpu_check.json").read_text())["rows"]}
    assert "SIGTERM → 143" in notes["resume"]
    assert json.loads((out / "resume" / "metrics.json").read_text())["step"] == gpu_check.RESUME[True][0]


def test_without_hydra_the_script_says_so_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "hydra"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named hydra')\n")
    env = subprocess_env() | {"PYTHONPATH": str(tmp_path)}
    proc = run_script("--device", "cpu", "--tiny", env=env, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "hydra-core" in proc.stderr and "docstring" in proc.stderr


def test_flags_are_checked_before_anything_runs(tmp_path: Path) -> None:
    assert gpu_check.main(["--device", "cpu", "--only", "nope", "--out", str(tmp_path / "a")]) == 2
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("")
    assert gpu_check.main(["--device", "cpu", "--only", "logreg", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "a").exists()


def test_the_plan_covers_the_issue_and_only_selects_rows_or_tasks() -> None:
    rows = gpu_check.plan("cuda", tiny=False)
    assert [r.name for r in rows if r.kind == "train" and r.precision == "bf16" and not r.compile] == list(gpu_check.TASKS)
    by_name = {r.name: r for r in rows}
    assert by_name["cnn-fp16"].precision == "16" and by_name["cnn-fp16"].cuda_only
    assert by_name["transformer-compile"].compile and by_name["char-gpt"].compile
    assert {r.kind for r in rows} == {"train", "torchrun", "resume", "bench", "probe"}
    assert all(r.overrides == () for r in rows if r.kind in ("train", "torchrun"))  # default budgets: the targets'
    picked = [r.name for r in gpu_check.select(rows, "transformer,resume")]
    assert picked == ["transformer", "transformer-compile", "resume", "bench", "char-gpt"]
    with pytest.raises(ValueError, match="nope"):
        gpu_check.select(rows, "nope,cnn")


def test_quality_targets_are_the_cpu_tests_and_only_enforced_at_full_budgets(tmp_path: Path) -> None:
    targets = gpu_check.TARGETS
    assert targets["cnn"].met({"test/acc": 0.98}) and not targets["cnn"].met({"test/acc": 0.979})
    assert targets["logreg"].met({"test/acc": 0.9651, "test/acc_sklearn": 0.9651})
    assert not targets["logreg"].met({"test/acc": 0.958, "test/acc_sklearn": 0.9651})
    assert targets["gan"].met({"test/fid": 15.05, "test/fid_real": 10.53})
    assert not targets["gan"].met({"test/fid": 21.1, "test/fid_real": 10.53})
    assert (targets["rnn"].value, targets["transformer"].value, targets["linreg"].value) == (1.55, 2.15, 1.01)

    row = gpu_check.plan("cpu", tiny=True)[2]  # cnn
    for tiny, status in ((True, "ok"), (False, "FAIL")):
        line = gpu_check.new_line(row)
        gpu_check.judge(line, row.target, {"test/acc": 0.3}, context(tmp_path, tiny))
        assert line.status == status and "MISS" in line.quality
    line = gpu_check.new_line(row)
    gpu_check.judge(line, row.target, {"val/acc": 0.99}, context(tmp_path))
    assert line.status == "FAIL" and "no test/acc" in line.notes[0]  # a missing metric fails even at tiny budgets


def test_telemetry_is_shown_when_present_and_required(tmp_path: Path) -> None:
    row = gpu_check.plan("cuda", tiny=False)[4]  # transformer
    h200 = context(tmp_path, False, "cuda", "NVIDIA H200")
    metrics = {"train/tokens_per_s": 1.5e6, "train/samples_per_s": 1e4, "train/step_ms": 3.0,
               "train/peak_mem_gib": 2.345, "train/mfu": 0.412, "val/loss": 1.9}
    line = gpu_check.new_line(row)
    gpu_check.fill_from_metrics(line, row, metrics, h200)
    assert (line.throughput, line.mfu, line.peak, line.status) == ("1.5M tok/s", "41.2%", "2.35", "ok")
    assert line.notes == []

    line = gpu_check.new_line(row)
    gpu_check.fill_from_metrics(line, row, {"val/loss": 1.9}, h200)
    assert (line.throughput, line.mfu, line.status) == ("-", "-", "FAIL")
    assert "train/tokens_per_s, train/step_ms, train/peak_mem_gib, train/mfu" in line.notes[0]

    line = gpu_check.new_line(row)
    gpu_check.fill_from_metrics(line, row, {k: v for k, v in metrics.items() if k != "train/mfu"},
                                context(tmp_path, True, "cpu"))
    assert (line.mfu, line.status) == ("-", "ok")  # no known peak FLOP/s for a CPU: no MFU
    expected = gpu_check.expected_telemetry
    assert expected("cnn", "bf16", h200) == ("train/samples_per_s", "train/step_ms", "train/peak_mem_gib", "train/mfu")
    assert "train/mfu" not in expected("gan", "bf16", h200)  # two optimizers: the trainer reports no MFU
    assert "train/mfu" not in expected("cnn", "bf16", context(tmp_path, False, "cuda", "Some Unlisted GPU"))


def test_bench_json_is_read_defensively(tmp_path: Path) -> None:
    ctx = context(tmp_path, tiny=False, device="cuda")
    line = gpu_check.Line("bench-transformer", "transformer", "32", False)
    gpu_check.read_bench_entry(line, {"ratio_mirrored": 1.02, "ratio_plain": 1.07, "tokens_per_s": 2.5e5}, ctx)
    assert (line.ratio, line.throughput, line.status, line.notes) == ("1.020/1.070", "250k tok/s", "ok", [])
    line = gpu_check.Line("bench-cnn", "cnn", "32", False)
    gpu_check.read_bench_entry(line, {"ratio_mirrored": 1.2}, ctx)
    assert line.ratio == "1.200/-" and line.status == "FAIL"
    assert any("ratio_plain" in n for n in line.notes) and any("speed target" in n for n in line.notes)
    line = gpu_check.Line("bench-cnn", "cnn", "32", False)
    gpu_check.read_bench_entry(line, None, ctx)
    assert line.status == "FAIL"


class FakeTrainer:
    step = 0  # what the probe reads of the trainer: the steps taken


def sync(times: int) -> None:
    for _ in range(times):
        warnings.warn("called a synchronizing CUDA operation", UserWarning)


def test_the_sync_probe_charges_each_step_its_syncs_and_allows_logging_points() -> None:
    """The hooks in the trainer's order: a step's syncs are its own, a logging point's are allowed, and what
    happens between steps (building, validation with its own on_log, epoch ends, the test pass) is no step's."""
    trainer = FakeTrainer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=f".*{gpu_check.SYNC_WARNING}")
        probe = gpu_check.SyncProbe(caught)
        sync(5)  # building the run
        warnings.warn("something else", UserWarning)
        probe.on_fit_start(trainer)

        def step(syncs: int, log_syncs: int | None = None) -> None:
            sync(syncs)  # the step's batches and optimizer step
            trainer.step += 1
            if log_syncs is not None:  # a logging point: the losses read once, then on_log
                sync(log_syncs)
                probe.on_log(trainer, {"train/loss": 1.0})
            probe.on_step_end(trainer)

        step(2)
        step(0, log_syncs=1)
        step(1, log_syncs=2)  # a logging point's syncs are allowed, all of them
        sync(1)  # validation: the trainer logs first (on_log outside a step), then evaluates
        probe.on_log(trainer, {"train/loss": 1.0})
        sync(3)
        probe.on_validation_end(trainer, {"val/loss": 1.0}, True)
        sync(1)  # a checkpoint, the epoch's end
        probe.on_epoch_end(trainer)
        step(0)  # not a logging point, although on_log fired since the previous step
        step(1)
        sync(4)  # the final validation and test pass
        report = probe.report(cuda=True)
    assert [(s["step"], s["syncs"], s["logging_point"]) for s in report["per_step"]] == [
        (1, 2, False), (2, 1, True), (3, 3, True), (4, 0, False), (5, 1, False)]
    assert report["outside_steps"] == 5 + 1 + 3 + 1 + 4 and report["total"] == 14 + 7
    assert len(caught) == 21 + 1  # the other warning is kept too (sync_probe shows it after the run)

    line = gpu_check.new_line(gpu_check.plan("cuda", tiny=False)[-1])
    gpu_check.judge_syncs(line, report | {"per_step": report["per_step"][:4]}, context(Path(), False, "cuda"))
    assert line.status == "ok", line.notes  # steps 1-3 warm up; step 4 made none
    gpu_check.judge_syncs(line, report, context(Path(), False, "cuda"))
    assert line.status == "FAIL" and "steps 5 " in line.notes[-1]


def test_the_sync_probe_follows_the_real_trainers_hooks(tmp_path: Path) -> None:
    """A real fit on the CPU with syncs faked where they would come from: one per batch, two more in every
    on_log, one after each validation. Only the batches' are charged to the steps."""
    from ptlab.api import build, compose
    from ptlab.engine.callbacks import Callback
    from ptlab.engine.trainer import Trainer

    class FakeSyncs(Callback):
        def on_log(self, trainer, metrics) -> None:
            sync(2)

        def on_validation_end(self, trainer, metrics, improved) -> None:
            sync(1)

    run = build(compose(["task=logreg", "device=cpu", "trainer.max_epochs=2", "trainer.limit_train_batches=4",
                         "trainer.log_every_n_steps=3", "trainer.progress=plain"]))
    training_step = run.objective.training_step

    def syncing_step(*args, **kwargs):
        sync(1)
        return training_step(*args, **kwargs)

    run.objective.training_step = syncing_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=f".*{gpu_check.SYNC_WARNING}")
        probe = gpu_check.SyncProbe(caught)
        Trainer(run, [FakeSyncs(), probe]).fit()
    steps = probe.report(cuda=True)["per_step"]
    assert [(s["step"], s["syncs"], s["logging_point"]) for s in steps] == [
        (n, 3 if n in (3, 6) else 1, n in (3, 6)) for n in range(1, 9)]
    assert probe.outside_steps == 2 * (2 + 1)  # two validations, each logging first


def test_syncs_fail_the_row_on_cuda_after_the_warm_up(tmp_path: Path) -> None:
    row = gpu_check.plan("cuda", tiny=False)[-1]
    ctx = context(tmp_path, False, "cuda")
    counts = [5, 2, 1, 0, 2, 0, 0]  # step 5 is a logging point
    per_step = [{"step": n, "syncs": c, "logging_point": n == 5} for n, c in enumerate(counts, 1)]
    clean = {"cuda": True, "per_step": per_step, "outside_steps": 9, "total": 19}
    line = gpu_check.new_line(row)
    gpu_check.judge_syncs(line, clean, ctx)
    assert (line.syncs, line.status) == ("0", "ok") and "2 syncs at 1 logging points" in line.notes[0]
    line = gpu_check.new_line(row)
    gpu_check.judge_syncs(line, clean | {"per_step": per_step[:5] + [per_step[5] | {"syncs": 1}]}, ctx)
    assert (line.syncs, line.status) == ("1", "FAIL") and "steps 6 " in line.notes[-1]
    line = gpu_check.new_line(row)
    gpu_check.judge_syncs(line, clean | {"per_step": []}, ctx)
    assert line.status == "FAIL" and "no training step" in line.notes[0]
    line = gpu_check.new_line(row)
    gpu_check.judge_syncs(line, clean | {"cuda": False}, ctx)
    assert (line.syncs, line.status) == ("n/a", "ok")


def test_the_char_gpt_benchmark_config_composes_with_the_cli_overrides() -> None:
    cfg = ptlab.compose(list(gpu_check.CHAR_GPT))
    assert cfg.task == "transformer" and cfg.data.name == "python_docs"
    assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd) == (6, 6, 384)
    assert (cfg.data.block_size, cfg.data.batch_size) == (256, 64)
    assert cfg.trainer.precision == "bf16" and cfg.trainer.compile is True
    assert cfg.scheduler.warmup_steps == 20  # the transformer task's own options still apply
    tiny = ptlab.compose([*gpu_check.CHAR_GPT, *gpu_check.CHAR_GPT_TINY, "device=cpu"])
    assert tiny.model.n_layer == 1 and tiny.trainer.max_steps == 6


FAKE_BENCH = '''
import argparse, json
parser = argparse.ArgumentParser()
for flag in ("--tasks", "--rounds", "--epochs", "--steps", "--device", "--json"):
    parser.add_argument(flag)
args = parser.parse_args()
json.dump({"cnn": {"ratio_mirrored": 0.99, "ratio_plain": 1.04, "samples_per_s": 52000.0}}, open(args.json, "w"))
'''
NO_PLAIN_RATIO = FAKE_BENCH.replace('"ratio_plain": 1.04, ', "")


@pytest.mark.parametrize("script, status, ratio", [(FAKE_BENCH, "ok", "0.990/1.040"), (NO_PLAIN_RATIO, "FAIL", "0.990/-")])
def test_the_bench_row_calls_bench_trainer_and_reads_both_ratios(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, status: str, ratio: str) -> None:
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    (tmp_path / "repo" / "scripts" / "bench_trainer.py").write_text(script)
    monkeypatch.setattr(gpu_check, "REPO", tmp_path / "repo")
    (tmp_path / "out").mkdir()
    ctx = gpu_check.Context("cpu", True, tmp_path / "out", gpu_check.child_env("cpu", True), "cpu")
    row = next(r for r in gpu_check.plan("cpu", tiny=True) if r.kind == "bench")
    [line] = gpu_check.check_bench(row, ctx)
    assert (line.name, line.status, line.ratio) == ("bench-cnn", status, ratio)
    assert "--device cpu --tasks cnn --rounds 1 --epochs 1 --steps 3 --json" in (tmp_path / "out" / "bench.log").read_text()
