"""The GPU path, proven by one command: every task on CUDA, the GradScaler, compile, torchrun, SIGTERM resume, speed.

    python scripts/gpu_check.py --device cuda            # the real check: one GPU, under 8 minutes
    python scripts/gpu_check.py --device cpu --tiny      # the same code paths, a few steps each (tests/test_gpu_check.py)
    python scripts/gpu_check.py --device cuda --only cnn,resume --out /tmp/check

Every row is a real ``python -m ptlab train ...`` subprocess (``hydra.run.dir`` under ``--out``) whose
``metrics.json`` is read back:

=====================  ===========================================================================
row                    what it runs
=====================  ===========================================================================
linreg … gan           each task in ``trainer.precision=bf16``
cnn-fp16               cnn in fp16 with the GradScaler (CUDA only: skipped on ``--device cpu``)
transformer-compile    the transformer with ``trainer.compile=true``
torchrun               ``torchrun --standalone --nproc_per_node=1 -m ptlab train task=cnn ...``
resume                 cnn with a checkpoint every N steps and ``resume=auto``: SIGTERM once a checkpoint
                       is written (exit 143 expected), the same command again, which must end on the
                       planned final step
bench                  ``scripts/bench_trainer.py --device D --tasks cnn,transformer --json FILE``: one line
                       per task, ptlab's time per epoch/step over the hand-written loop's (mirrored/plain)
char-gpt               the benchmark config ``+experiment=char_gpt`` (configs/experiment/char_gpt.yaml: 6
                       layers × 6 heads × 384, block 256, batch 64) in bf16 with compile, through
                       ``--sync-probe`` (below): tokens/s, MFU and host syncs per training step
=====================  ===========================================================================

Budgets and targets
    On a full run (no ``--tiny``) every task trains at its default budget, the one its CPU quality target is
    defined at, and the target is enforced (exit 1 on a miss): linreg test/mse_vs_lstsq ≤ 1.01, logreg
    test/acc ≥ test/acc_sklearn − 1e-6, cnn test/acc ≥ 0.98 (tests/test_tasks.py), rnn val/loss ≤ 1.55,
    transformer val/loss ≤ 2.15 (scripts/bench_text_tasks.py, README), gan test/fid ≤ 2 × test/fid_real
    (tests/test_gan.py). torchrun trains cnn at its default budget too and has cnn's target; resume, bench
    and char-gpt have none. ``--tiny`` trains a few steps of smaller shapes: quality is printed, never
    enforced (the ``quality`` column then ends in ``(tiny)``). On ``--device cpu --tiny`` compiled rows use
    dynamo with the ``aot_eager`` backend (``TORCH_COMPILE_OVERRIDE_BACKENDS``, where torch reads it): the
    same tracing of the model, without inductor's C++ code generation, which takes a minute on 2 cores.

    Host syncs: on CUDA the char-gpt row must make none inside a training step after SYNC_WARMUP_STEPS
    (logging points excepted): ``torch.cuda.set_sync_debug_mode("warn")`` is set in the training process and
    every warning it raises is counted per step (SyncProbe). Any failed run, wrong exit code, missing metric
    or per-step sync is a failure (exit 1).

    Throughput telemetry is required: every run's metrics.json must hold
    ``train/samples_per_s`` (text: ``train/tokens_per_s``), ``train/step_ms``, ``train/peak_mem_gib`` and, on a
    GPU whose peak FLOP/s ptlab knows (ptlab.engine.throughput.PEAK_FLOPS), ``train/mfu`` for the tasks with
    one optimizer (the trainer reports no MFU for a GAN's two). bench_trainer.py's JSON must hold both ratios.
    Speed targets (char-gpt MFU ≥ 35 % on an H100/H200, bench ratio ≤ 1.05) are noted when missed and fail
    the run only with ENFORCE_SPEED_TARGETS.

The table, with the GPU and the date, goes to stdout and to ``OUT/gpu_check.txt``; every row's numbers to
``OUT/gpu_check.json``; each run's output to ``OUT/ROW.log`` and its run directory to ``OUT/ROW/``.
Exit status: 0 all passed, 1 a check failed, 2 the script could not start (bad flags, no CUDA, no Hydra).

On the device machine (the ``device`` tool; its image has torch but not hydra-core, omegaconf, antlr4):
once, here, in the repository root::

    mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.8 omegaconf==2.3.1
    .venv/bin/python -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # PyPI has no wheel of it

then one call of ``run`` with ``carry: [".whl"]``, ``timeout_s: 600`` and the command::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site
    .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 timeout 560 python3
    scripts/gpu_check.py --device cuda --out /tmp/gpu_check; rc=$?; cp /tmp/gpu_check/gpu_check.txt
    /tmp/gpu_check/gpu_check.json $OUT/; exit $rc

(one line; ``timeout`` stops the script before the call's limit, so the table of the rows done so far,
written after each row, still comes back). Everything else ptlab needs (torch, torchvision, torchmetrics,
scikit-learn, tokenizers, rich, tensorboard, matplotlib, PyYAML) is in that image.

``--sync-probe REPORT RUN_DIR OVERRIDES...`` (what the char-gpt row runs) trains ``ptlab train OVERRIDES...``
in this process through the public API (``ptlab.api.compose``, ``build``, ``Trainer`` with the run's own
callbacks and a SyncProbe), writing into RUN_DIR as ``ptlab train`` would (metrics.json, model_summary.json,
tb/, tokenizer.json; no .hydra/ or train.log), with the sync debug mode on (CUDA); the counts go to REPORT
(JSON). Needs torch and this checkout's ptlab (imported from the repository, as the runs are); Python 3.10+.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's ptlab, here as in the runs (child_env puts it on their PYTHONPATH)

from ptlab.engine.callbacks import Callback  # noqa: E402  (torch and the standard library only)
from ptlab.engine.throughput import known_peak  # noqa: E402

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

ENFORCE_SPEED_TARGETS = False  # True: a missed MFU or bench-ratio target fails the run (else it is noted)

TASKS = ("linreg", "logreg", "cnn", "rnn", "transformer", "gan")
TEXT_TASKS = ("rnn", "transformer")
SEVERAL_OPTIMIZERS = ("gan",)  # the trainer reports no MFU for these
MFU_TARGET, MFU_TARGET_GPUS = 0.35, ("H100", "H200")  # the target for char-gpt in bf16 with compile
BENCH_TARGET = 1.05  # ptlab's time over the mirrored hand loop's (scripts/bench_trainer.py TARGET_MIRRORED)
SYNC_WARMUP_STEPS = 3  # the first steps compile and allocate: their syncs are not counted
SYNC_WARNING = "synchronizing CUDA operation"  # what set_sync_debug_mode("warn") says
ROW_TIMEOUT_S = 300  # one run; the whole check should take under 8 minutes on one GPU
RESUME_WAIT_S = 240

TINY = ("trainer.max_epochs=1", "trainer.max_steps=3", "trainer.log_every_n_steps=1")
TINY_SHAPES = {
    "rnn": ("data.block_size=32", "model.embedding_dim=16", "model.hidden_size=32"),
    "transformer": ("data.block_size=32", "model.n_layer=1", "model.n_head=2", "model.n_embd=32"),
    "gan": ("model.width=8",),
}
# resume: (max_steps, checkpoint.every_n_steps, extra); max_steps stays below the run's epochs × batches per epoch
RESUME = {False: (500, 50, ("trainer.log_every_n_steps=50",)),
          True: (30, 1, ("trainer.max_epochs=2", "data.batch_size=32", "trainer.log_every_n_steps=5"))}
CHAR_GPT = ("+experiment=char_gpt", "trainer.precision=bf16", "trainer.compile=true")
CHAR_GPT_TINY = ("model.n_layer=1", "model.n_head=2", "model.n_embd=32", "data.block_size=32", "data.batch_size=8",
                 "trainer.max_steps=6", "trainer.log_every_n_steps=2")


@dataclass(frozen=True)
class Target:
    """``metric op bound``: the bound is ``value``, or ``value × metrics[reference] + offset`` with a reference."""

    metric: str
    op: str  # "<=" | ">="
    value: float
    reference: str | None = None
    offset: float = 0.0

    def bound(self, metrics: dict[str, Any]) -> float:
        return self.value * metrics[self.reference] + self.offset if self.reference else self.value

    def met(self, metrics: dict[str, Any]) -> bool:
        got, bound = metrics[self.metric], self.bound(metrics)
        return got <= bound if self.op == "<=" else got >= bound


TARGETS = {  # the CPU quality targets at each task's default budget
    "linreg": Target("test/mse_vs_lstsq", "<=", 1.01),
    "logreg": Target("test/acc", ">=", 1.0, reference="test/acc_sklearn", offset=-1e-6),
    "cnn": Target("test/acc", ">=", 0.98),
    "rnn": Target("val/loss", "<=", 1.55),
    "transformer": Target("val/loss", "<=", 2.15),
    "gan": Target("test/fid", "<=", 2.0, reference="test/fid_real"),
}


@dataclass(frozen=True)
class Row:
    """One planned check: what it runs (``kind``), with which overrides, and the quality target it must meet."""

    name: str
    task: str
    precision: str  # trainer.precision: 32 | bf16 | 16
    compile: bool
    kind: str  # train | torchrun | resume | bench | probe
    overrides: tuple[str, ...] = ()
    target: Target | None = None
    tasks: tuple[str, ...] = ()  # the tasks it trains, for --only (default: its task)
    cuda_only: bool = False


@dataclass
class Line:
    """One line of the table."""

    name: str
    task: str
    precision: str
    compile: bool
    status: str = "ok"  # ok | FAIL | skip
    wall_s: float | None = None
    throughput: str = "-"
    mfu: str = "-"
    peak: str = "-"
    ratio: str = "-"
    quality: str = "-"
    syncs: str = "-"
    notes: list[str] = field(default_factory=list)

    def fail(self, why: str) -> Line:
        self.status = "FAIL"
        self.notes.append(why)
        return self


@dataclass
class Context:
    device: str
    tiny: bool
    out: Path
    env: dict[str, str]
    gpu: str  # the device's name, for the speed targets

    @property
    def enforce_quality(self) -> bool:
        return not self.tiny


# --- the plan ---------------------------------------------------------------------------------------------


def plan(device: str, tiny: bool) -> list[Row]:
    """Every row, in the order they run."""
    def budget(task: str) -> tuple[str, ...]:
        return (*TINY, *TINY_SHAPES.get(task, ())) if tiny else ()

    rows = [Row(task, task, "bf16", False, "train", budget(task), TARGETS[task]) for task in TASKS]
    rows += [
        Row("cnn-fp16", "cnn", "16", False, "train", budget("cnn"), TARGETS["cnn"], cuda_only=True),
        Row("transformer-compile", "transformer", "bf16", True, "train", budget("transformer"),
            TARGETS["transformer"]),
        Row("torchrun", "cnn", "bf16", False, "torchrun", budget("cnn"), TARGETS["cnn"]),
        Row("resume", "cnn", "bf16", False, "resume", RESUME[tiny][2]),
        Row("bench", "cnn" if tiny else "cnn,transformer", "32", False, "bench",
            tasks=("cnn",) if tiny else ("cnn", "transformer")),
        Row("char-gpt", "transformer", "bf16", True, "probe", CHAR_GPT + (CHAR_GPT_TINY if tiny else ())),
    ]
    return rows


def select(rows: list[Row], only: str | None) -> list[Row]:
    """The rows ``--only`` names (a row's name, or a task it trains), in plan order."""
    if not only:
        return rows
    names = {n.strip() for n in only.split(",") if n.strip()}
    known = {r.name for r in rows} | set(TASKS)
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"--only: {', '.join(unknown)} is not a row or task; use some of "
                         f"{', '.join(r.name for r in rows)}")
    return [r for r in rows if r.name in names or names & set(r.tasks or (r.task,))]


# --- running ptlab ------------------------------------------------------------------------------------------


def train_args(row: Row, ctx: Context) -> list[str]:
    head = [] if row.kind == "probe" else [f"task={row.task}", f"trainer.precision={row.precision}",
                                           f"trainer.compile={str(row.compile).lower()}"]
    return [*head, f"device={ctx.device}", "trainer.progress=plain", *row.overrides]


def ptlab_command(args: Sequence[str], run_dir: Path, launcher: Sequence[str] = ()) -> list[str]:
    return [sys.executable, *launcher, "-m", "ptlab", "train", *args, f"hydra.run.dir={run_dir}"]


def run_logged(cmd: list[str], log: Path, ctx: Context, timeout: float = ROW_TIMEOUT_S) -> int | None:
    """Run ``cmd`` with its output in ``log``; its exit code, or None when it ran past ``timeout``."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(cmd, cwd=ctx.out, env=ctx.env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return None


ERROR_LINE = re.compile(r"ptlab: error: |[\w.]*(Error|Exception): ")


def last_words(log: Path) -> str:
    """What a failed run said: its ptlab error, else the first exception line (under torchrun the worker's,
    before the launcher's own), else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    chosen = next((line for line in errors if line.startswith("ptlab: error")), errors[0] if errors else None)
    return (chosen or (lines[-1] if lines else "no output"))[:200]


def exit_problem(code: int | None, log: Path, expected: int = 0) -> str | None:
    if code is None:
        return f"ran past {ROW_TIMEOUT_S} s (see {log.name})"
    if code != expected:
        return f"exit {code}, expected {expected}: {last_words(log)} (see {log.name})"
    return None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def expected_telemetry(task: str, precision: str, ctx: Context) -> tuple[str, ...]:
    """The throughput keys a run's metrics.json should hold.

    MFU needs the hardware's peak FLOP/s, which ptlab knows for listed GPUs only (none for a CPU), and a
    task with one optimizer: the trainer reports none for a GAN's two players.
    """
    throughput = "train/tokens_per_s" if task in TEXT_TASKS else "train/samples_per_s"
    mfu = ctx.device == "cuda" and task not in SEVERAL_OPTIMIZERS and known_peak(ctx.gpu, precision) is not None
    return (throughput, "train/step_ms", "train/peak_mem_gib", *(("train/mfu",) if mfu else ()))


def fill_from_metrics(line: Line, row: Row, metrics: dict[str, Any], ctx: Context) -> None:
    """Throughput, MFU, peak memory from the telemetry, where present; the quality against the row's target."""
    text = row.task in TEXT_TASKS
    throughput_key = "train/tokens_per_s" if text else "train/samples_per_s"
    if throughput_key in metrics:
        line.throughput = f"{human(metrics[throughput_key])} {'tok' if text else 'smp'}/s"
    if "train/mfu" in metrics:
        line.mfu = f"{100 * metrics['train/mfu']:.1f}%"
    if "train/peak_mem_gib" in metrics:
        line.peak = f"{metrics['train/peak_mem_gib']:.2f}"
    absent = [k for k in expected_telemetry(row.task, row.precision, ctx) if k not in metrics]
    if absent:
        line.fail(f"metrics.json has no {', '.join(absent)}")
    if row.target is not None:
        judge(line, row.target, metrics, ctx)


def judge(line: Line, target: Target, metrics: dict[str, Any], ctx: Context) -> None:
    needed = [k for k in (target.metric, target.reference) if k and k not in metrics]
    if needed:
        line.fail(f"metrics.json has no {', '.join(needed)}")
        return
    ok = target.met(metrics)
    short = target.metric.split("/")[-1]
    line.quality = f"{short} {metrics[target.metric]:.4g} {'≤' if target.op == '<=' else '≥'} " \
                   f"{target.bound(metrics):.4g}{'' if ok else ' MISS'}{'' if ctx.enforce_quality else ' (tiny)'}"
    if not ok and ctx.enforce_quality:
        line.fail(f"{target.metric} {metrics[target.metric]:.4g} misses the CPU target")


def slow(line: Line, what: str) -> None:
    if ENFORCE_SPEED_TARGETS:
        line.fail(what)
    else:
        line.notes.append(f"{what} (speed target, noted)")


def human(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def new_line(row: Row) -> Line:
    return Line(row.name, row.task, row.precision, row.compile)


def check_train(row: Row, ctx: Context, launcher: Sequence[str] = ()) -> list[Line]:
    line, run_dir, log = new_line(row), ctx.out / row.name, ctx.out / f"{row.name}.log"
    problem = exit_problem(run_logged(ptlab_command(train_args(row, ctx), run_dir, launcher), log, ctx), log)
    metrics = read_json(run_dir / "metrics.json")
    if problem:
        return [line.fail(problem)]
    if not isinstance(metrics, dict):
        return [line.fail(f"no metrics.json in {run_dir}")]
    fill_from_metrics(line, row, metrics, ctx)
    return [line]


def check_torchrun(row: Row, ctx: Context) -> list[Line]:
    lines = check_train(row, ctx, ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"))
    lines[0].notes.append("one process: ptlab joins no process group at world size 1 (no DDP, no nccl)")
    return lines


def saved_step(run_dir: Path) -> int:
    """The step of the newest complete last.pt (the checkpoint manifest), -1 before the first."""
    manifest = read_json(run_dir / "checkpoints" / "manifest.json")
    if not isinstance(manifest, dict):
        return -1
    return manifest.get("files", {}).get("last.pt", {}).get("step", -1)


def check_resume(row: Row, ctx: Context) -> list[Line]:
    """Start, SIGTERM once a checkpoint exists (143), relaunch the same command: it must end on the planned step."""
    line, run_dir, log = new_line(row), ctx.out / row.name, ctx.out / f"{row.name}.log"
    max_steps, every, _ = RESUME[ctx.tiny]
    cmd = ptlab_command([*train_args(row, ctx), f"trainer.max_steps={max_steps}",
                         f"checkpoint.every_n_steps={every}", "resume=auto"], run_dir)
    with log.open("w") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ctx.out, env=ctx.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + RESUME_WAIT_S
        while saved_step(run_dir) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:
            return [line.fail(f"the run ended (exit {proc.returncode}) before a checkpoint let SIGTERM land: "
                              f"{last_words(log)}")]
        if saved_step(run_dir) < 1:
            proc.kill()
            proc.wait()
            return [line.fail(f"no checkpoint within {RESUME_WAIT_S} s")]
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    problem = exit_problem(code, log, expected=128 + signal.SIGTERM)
    if problem:
        return [line.fail(f"after SIGTERM: {problem}")]
    stopped = saved_step(run_dir)
    line.notes.append(f"SIGTERM → 143 with last.pt at step {stopped}; relaunched")
    problem = exit_problem(run_logged(cmd, log, ctx), log)
    metrics = read_json(run_dir / "metrics.json")
    if problem:
        return [line.fail(f"relaunch: {problem}")]
    if not isinstance(metrics, dict):
        return [line.fail(f"relaunch: no metrics.json in {run_dir}")]
    if metrics.get("step") != max_steps:
        line.fail(f"the resumed run ended on step {metrics.get('step')}, planned {max_steps}")
    train_log = run_dir / "train.log"
    if "resuming from" not in (train_log.read_text(errors="replace") if train_log.exists() else ""):
        line.fail("the relaunch did not resume from the checkpoint (no 'resuming from' in train.log)")
    fill_from_metrics(line, row, metrics, ctx)
    return [line]


def check_bench(row: Row, ctx: Context) -> list[Line]:
    """scripts/bench_trainer.py on the device: one line per task, from its JSON."""
    log, report = ctx.out / f"{row.name}.log", ctx.out / "bench.json"
    budget = ["--rounds", "1", "--epochs", "1", "--steps", "3"] if ctx.tiny else ["--rounds", "5"]
    cmd = [sys.executable, str(REPO / "scripts" / "bench_trainer.py"), "--device", ctx.device,
           "--tasks", ",".join(row.tasks), *budget, "--json", str(report)]
    code = run_logged(cmd, log, ctx)
    lines = [Line(f"bench-{task}", task, "32", False) for task in row.tasks]
    problem = exit_problem(code, log)
    if problem:
        return [line.fail(problem) for line in lines]
    results = read_json(report)
    if not isinstance(results, dict):
        return [line.fail(f"bench_trainer.py wrote no JSON object to {report.name}") for line in lines]
    for line in lines:
        read_bench_entry(line, results.get(line.task), ctx)
    return lines


def read_bench_entry(line: Line, entry: Any, ctx: Context) -> None:
    """One task's numbers from bench.json: {"ratio_mirrored", "ratio_plain", "tokens_per_s" | "samples_per_s"}."""
    if not isinstance(entry, dict):
        line.fail(f"bench.json has no entry for {line.task}")
        return
    mirrored, plain = entry.get("ratio_mirrored"), entry.get("ratio_plain")
    line.ratio = "/".join("-" if r is None else f"{r:.3f}" for r in (mirrored, plain))
    absent = [k for k in ("ratio_mirrored", "ratio_plain") if k not in entry]
    if "tokens_per_s" in entry:
        line.throughput = f"{human(entry['tokens_per_s'])} tok/s"
    elif "samples_per_s" in entry:
        line.throughput = f"{human(entry['samples_per_s'])} smp/s"
    elif line.task in TEXT_TASKS:
        absent.append("tokens_per_s")
    if absent:
        line.fail(f"bench.json[{line.task}] has no {', '.join(absent)}")
    if mirrored is not None and mirrored > BENCH_TARGET and not ctx.tiny:
        slow(line, f"ptlab/hand {mirrored:.3f} > {BENCH_TARGET}")


def check_probe(row: Row, ctx: Context) -> list[Line]:
    """The char-GPT benchmark config, trained with host syncs counted per step (see sync_probe)."""
    line, run_dir, log = new_line(row), ctx.out / row.name, ctx.out / f"{row.name}.log"
    report = ctx.out / f"{row.name}.syncs.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--sync-probe", str(report), str(run_dir),
           *train_args(row, ctx)]
    problem = exit_problem(run_logged(cmd, log, ctx), log)
    if problem:
        return [line.fail(problem)]
    metrics, syncs = read_json(run_dir / "metrics.json"), read_json(report)
    if not isinstance(metrics, dict):
        return [line.fail(f"no metrics.json in {run_dir}")]
    fill_from_metrics(line, row, metrics, ctx)
    line.quality = f"loss {metrics['val/loss']:.4g}" if "val/loss" in metrics else "-"
    judge_syncs(line, syncs, ctx)
    mfu = metrics.get("train/mfu")
    if mfu is not None and not ctx.tiny and any(name in ctx.gpu for name in MFU_TARGET_GPUS) and mfu < MFU_TARGET:
        slow(line, f"MFU {100 * mfu:.1f}% < {100 * MFU_TARGET:.0f}% on {ctx.gpu}")
    line.notes.append("no hand-written loop of this shape to compare tokens/s with (bench_trainer.py takes no "
                      "config overrides)")
    return [line]


def judge_syncs(line: Line, syncs: Any, ctx: Context) -> None:
    """Fail on any host sync inside a training step after the warm-up; logging points are allowed theirs."""
    if not isinstance(syncs, dict):
        line.fail("the sync probe wrote no report")
        return
    steps = syncs["per_step"]
    if not steps:
        line.fail("the sync probe saw no training step (does the trainer still emit on_step_end?)")
        return
    if not syncs["cuda"]:
        line.syncs = "n/a"
        line.notes.append(f"host syncs are counted on CUDA only ({len(steps)} steps seen)")
        return
    after_warm_up = steps[SYNC_WARMUP_STEPS:]
    judged = [s for s in after_warm_up if not s["logging_point"]]
    line.syncs = str(max((s["syncs"] for s in judged), default=0))
    at_logs = [s for s in after_warm_up if s["logging_point"]]
    line.notes.append(f"allowed: {sum(s['syncs'] for s in at_logs)} syncs at {len(at_logs)} logging points, "
                      f"{syncs['outside_steps']} outside steps (start, validation, epoch ends)")
    with_syncs = [s["step"] for s in judged if s["syncs"]]
    if with_syncs:
        shown = ", ".join(map(str, with_syncs[:8])) + (" …" if len(with_syncs) > 8 else "")
        line.fail(f"host syncs inside training steps {shown} ({sum(s['syncs'] for s in judged)} in "
                  f"{len(judged)} steps that are not logging points)")


CHECKS: dict[str, Callable[[Row, Context], list[Line]]] = {
    "train": check_train, "torchrun": check_torchrun, "resume": check_resume, "bench": check_bench,
    "probe": check_probe,
}


def run_row(row: Row, ctx: Context) -> list[Line]:
    if row.cuda_only and ctx.device != "cuda":
        line = new_line(row)
        line.status = "skip"
        line.notes.append("fp16 with the GradScaler needs CUDA")
        return [line]
    started = time.monotonic()
    try:
        lines = CHECKS[row.kind](row, ctx)
    except Exception as error:  # a bug of this script or an unexpected file: one failed row, not a lost table
        lines = [new_line(row).fail(f"{type(error).__name__}: {error}")]
    for line in lines:
        line.wall_s = time.monotonic() - started
    return lines


# --- the table ----------------------------------------------------------------------------------------------

COLUMNS = (("row", "name"), ("task", "task"), ("precision", "precision"), ("compile", "compile"),
           ("throughput", "throughput"), ("MFU", "mfu"), ("peak GiB", "peak"), ("×hand (mirr/plain)", "ratio"),
           ("quality vs CPU target", "quality"), ("syncs/step", "syncs"), ("wall s", "wall_s"), ("status", "status"))
PRECISION_NAMES = {"32": "fp32", "bf16": "bf16", "16": "fp16+scaler"}


def cell(line: Line, attr: str) -> str:
    value = getattr(line, attr)
    if attr == "precision":
        return PRECISION_NAMES.get(value, value)
    if attr == "compile":
        return "yes" if value else "no"
    if attr == "wall_s":
        return "-" if value is None else f"{value:.0f}"
    return str(value)


def table(lines: list[Line], header: str) -> str:
    rows = [[title for title, _ in COLUMNS]] + [[cell(line, attr) for _, attr in COLUMNS] for line in lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    text = [header, ""]
    for i, r in enumerate(rows):
        text.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            text.append("  ".join("-" * w for w in widths))
    notes = [f"  {line.name}: {note}" for line in lines for note in line.notes]
    if notes:
        text += ["", "notes:", *notes]
    return "\n".join(text) + "\n"


# --- the sync probe (a mode of this script, run in the training process) ------------------------------------


class SyncProbe(Callback):
    """Host syncs per training step, from the ``set_sync_debug_mode("warn")`` warnings recorded in ``caught``.

    The trainer's hooks mark the boundaries: the fit's start, each step's end (``on_step_end``), and the end
    of a validation or an epoch. The sync warnings recorded since the previous boundary are, at
    ``on_step_end``, the step's that just ended (its batches, its optimizer step, and the other callbacks'
    ``on_step_end`` before this one's, so put the probe last); at any other boundary they are outside the
    steps (building the run, validation, checkpoints and epoch ends, between steps). A step in which
    ``on_log`` fired is a logging point: its syncs (the trainer reads the losses once there) are recorded
    but allowed. ``on_log`` also fires at the start of a validation, outside any step: the validation's end
    forgets it.
    """

    def __init__(self, caught: list[warnings.WarningMessage]) -> None:
        self.caught = caught  # what warnings.catch_warnings(record=True) records
        self.per_step: list[dict[str, Any]] = []  # {"step", "syncs", "logging_point"} for each step, in order
        self.outside_steps = 0
        self._read = 0  # entries of caught already counted
        self._logged = False  # on_log fired since the previous boundary

    def on_fit_start(self, trainer: Trainer) -> None:
        self._outside()

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._logged = True

    def on_step_end(self, trainer: Trainer) -> None:
        self.per_step.append({"step": trainer.step, "syncs": self._new_syncs(), "logging_point": self._logged})
        self._logged = False

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._outside()

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._outside()

    def report(self, cuda: bool) -> dict[str, Any]:
        self._outside()  # what came after the last boundary (the test pass) is no step's either
        return {"cuda": cuda, "per_step": self.per_step, "outside_steps": self.outside_steps,
                "total": self.outside_steps + sum(s["syncs"] for s in self.per_step)}

    def _outside(self) -> None:
        self.outside_steps += self._new_syncs()
        self._logged = False

    def _new_syncs(self) -> int:
        new = self.caught[self._read:]
        self._read = len(self.caught)
        return sum(is_sync_warning(w) for w in new)


def is_sync_warning(warning: warnings.WarningMessage) -> bool:
    return SYNC_WARNING in str(warning.message)


def sync_probe(report: Path, run_dir: Path, overrides: list[str]) -> int:
    """``ptlab train OVERRIDES`` into ``run_dir``, in this process, with host syncs counted per training step
    (SyncProbe) into ``report``; the exit code ``ptlab train`` would give."""
    import torch

    from ptlab.api import build, compose
    from ptlab.engine.run_callbacks import callbacks_for_run
    from ptlab.engine.trainer import Trainer, TrainingInterrupted
    from ptlab.errors import PtlabError

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # ptlab's log lines, as the console shows them
    run_dir.mkdir(parents=True, exist_ok=True)
    cuda, code = False, 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=f".*{SYNC_WARNING}")  # each one, not once per source line
        probe = SyncProbe(caught)
        try:
            run = build(compose(overrides))
            cuda = run.device.type == "cuda"
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            Trainer(run, [*callbacks_for_run(run, run_dir), probe]).fit()
            code = 0
        except PtlabError as error:
            print(f"ptlab: error: {error}", file=sys.stderr)
            code = 2
        except TrainingInterrupted as error:
            print(f"ptlab: {error}", file=sys.stderr)
            code = error.exit_code
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode(0)
            report.write_text(json.dumps(probe.report(cuda)))
    for warning in caught:  # the others, shown as they would have been
        if not is_sync_warning(warning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return code


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true",
                        help="a few steps of small shapes; quality is reported, not enforced")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated rows or tasks, e.g. cnn,resume,bench")
    parser.add_argument("--out", type=Path, help="an empty or new folder for the runs (default: a new temp folder)")
    return parser.parse_args(argv)


def child_env(device: str, tiny: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    if tiny:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if tiny and device == "cpu":
        env["TORCH_COMPILE_OVERRIDE_BACKENDS"] = ">=0:aot_eager"
    return env


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        import hydra  # noqa: F401  (the training processes need it; fail here, in one line, instead of per row)
        import omegaconf  # noqa: F401
    except ImportError as error:
        print(f"gpu_check: {error}: ptlab needs hydra-core, omegaconf and antlr4-python3-runtime; on the device "
              "machine carry their wheels (see the docstring of scripts/gpu_check.py)", file=sys.stderr)
        return 2
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: --device cuda, but torch sees no CUDA device here; use --device cpu --tiny",
              file=sys.stderr)
        return 2
    try:
        rows = select(plan(args.device, args.tiny), args.only)
    except ValueError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    if out.exists() and any(out.iterdir()):
        print(f"gpu_check: --out {out} is not empty; give a new folder (resume=auto would find old runs)",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    ctx = Context(args.device, args.tiny, out.resolve(), child_env(args.device, args.tiny), gpu)
    header = (f"gpu_check {datetime.date.today().isoformat()} · {gpu} · torch {torch.__version__} · "
              f"device={args.device}{' · tiny budgets' if args.tiny else ''} · runs in {ctx.out}")
    if args.device == "cuda" and known_peak(gpu, "bf16") is None:
        header += " · no MFU: ptlab.engine.throughput.PEAK_FLOPS has no entry for this GPU"
    print(header, flush=True)
    started, lines = time.monotonic(), []
    for row in rows:
        new = run_row(row, ctx)
        lines += new
        for line in new:
            print(f"  {line.name}: {line.status} ({cell(line, 'wall_s')} s)", flush=True)
        text = write_report(out, lines, header, time.monotonic() - started)  # after each row: kept if cut short
    print("\n" + text, end="")
    failed = [line.name for line in lines if line.status == "FAIL"]
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} ({len(lines)} rows)")
    return 1 if failed else 0


def write_report(out: Path, lines: list[Line], header: str, seconds: float) -> str:
    """The table so far into OUT/gpu_check.txt, the rows into OUT/gpu_check.json; returns the table."""
    header = f"{header} · {seconds / 60:.1f} min"
    text = table(lines, header)
    (out / "gpu_check.txt").write_text(text)
    (out / "gpu_check.json").write_text(json.dumps({"header": header, "seconds": round(seconds, 1),
                                                    "rows": [vars(line) for line in lines]}, indent=2))
    return text

if __name__ == "__main__":
    if sys.argv[1:2] == ["--sync-probe"] and len(sys.argv) > 3:
        sys.exit(sync_probe(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]))
    sys.exit(main(sys.argv[1:]))
