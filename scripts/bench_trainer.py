"""Benchmark ptlab's training epoch against two hand-written PyTorch loops (DESIGN.md §4). Not a test.

    .venv/bin/python scripts/bench_trainer.py [--tasks linreg,logreg,cnn,rnn,transformer] [--rounds 11]
        [--epochs N] [--steps N] [--device cpu|cuda] [--json PATH] [--ddp N]

Three sides train the same model, built with ``ptlab.build`` once per budget (long and short fit):

* **ptlab**: ``Trainer(run, callbacks=[timer]).fit()``, driven only through its
  public interface. The run is composed with ``trainer.val_every_n_epochs``
  equal to its length, so the one validation is the end-of-run one, and the
  ``timer`` callback reads the clock at ``on_fit_start`` and at the run's last
  ``on_step_end``: validation, the test pass and the baselines fall outside the
  timed span, everything in the epoch loop is inside it.
* **mirrored**: a hand loop that makes ptlab's own choices: the run's optimizer
  (fused kernels on CUDA) and scheduler, the batches of
  ``epoch_permutation(n, seed, epoch)``, the loss formula written out,
  ``backward()``, ``step()``, ``zero_grad(set_to_none=True)``,
  ``scheduler.step()``; the epoch's loss is summed on the device and read once
  at epoch end. Its first measurement must end with weights bit-identical to
  ptlab's (on CUDA, where atomics in some backward kernels differ run to run,
  equal to 1e-4 relative): proof that both trained on the same batches with the
  same updates, so their ratio is the trainer's own cost.
* **plain** (linreg, logreg, cnn): the loop a learner writes:
  ``torch.optim.<the task's optimizer>(model.parameters(), lr=<the task's lr>)``
  with torch's default flags, ``perm = torch.randperm(n)``,
  ``x[perm[i:i + bs]]``, no scheduler, ``zero_grad()``, ``backward()``,
  ``step()``, the loss summed on the device and read at epoch end. Its ratio is
  what ptlab costs a user against writing the loop.

The language models (``rnn``: char-level LSTM, ``transformer``: char-level GPT,
each with its task's default shape) are timed per optimizer step rather than per
epoch (an epoch is ~100 steps of up to 0.2 s); their mirrored loop cuts the same
windows (``epoch_phase`` + ``epoch_permutation``, as ``TokenWindows`` does),
writes the next-token cross-entropy out and clips the gradient norm at 1.0 as
the task configs do. Their per-epoch figures are the per-step ones times the
steps of an epoch, and tokens/s is reported.

Method: a side's cost per epoch (per step) is the time of a long fit minus that
of a short one (21 − 1 epochs; 3 − 1 for cnn; 30 − 5 steps, 20 − 5 for the
language models), divided by the difference, so fixed costs (the first step,
building the trainer) cancel; ``--epochs 1`` (a smoke run) times one fit
alone. One thread for torch and for the BLAS under scikit-learn (whose idle
threads would otherwise spin, after logreg's baseline, into the next side's
CPU time); ``--rounds`` interleaved rounds, the order of the sides rotating
every round to cancel drift; the table shows medians. Clock: on CPU the
process's CPU time (``time.process_time``), which does not count waiting for a
core on a busy shared machine; on CUDA wall time around
``torch.cuda.synchronize()``.

``--json PATH`` writes ``{task: {"ptlab_s_per_epoch", "mirrored_s_per_epoch",
"plain_s_per_epoch", "ratio_mirrored", "ratio_plain", "samples_per_s", ...}}``
(``null`` where a side does not apply; samples/s is ptlab's); the language
models have ``*_s_per_step``, ``tokens_per_s`` (ptlab's) and
``mirrored_tokens_per_s`` instead of samples/s.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

# One thread for every library, before any starts its pool (torch.set_num_threads(1) covers only torch's own).
# logreg's scikit-learn baseline runs after the timed span on OpenBLAS, whose idle threads then spin for a while:
# the process's CPU time counted them, and whichever side ran next measured up to 2x slower.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402

import ptlab  # noqa: E402
from ptlab.api import Run  # noqa: E402
from ptlab.data.loaders import epoch_permutation  # noqa: E402
from ptlab.data.token_batches import epoch_phase  # noqa: E402
from ptlab.engine.callbacks import Callback  # noqa: E402
from ptlab.engine.trainer import Trainer  # noqa: E402

TARGET_MIRRORED = 1.05  # the trainer's own cost (DESIGN.md §4)
TARGET_PLAIN = 1.10  # against the loop a learner writes (issue 13)
EPOCHS = {"linreg": (21, 1), "logreg": (21, 1), "cnn": (3, 1)}  # (long, short) fit per measurement
STEPS = {"rnn": (30, 5), "transformer": (20, 5)}  # language models: optimizer steps per fit
LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "linreg": lambda out, y: 0.5 * ((out - y) ** 2).mean(),
    "logreg": lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float()),
    "cnn": lambda out, y: F.cross_entropy(out, y),
}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class Clock:
    """CPU time of this process on the CPU; wall time between two ``torch.cuda.synchronize()`` on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


class TrainingTimer(Callback):
    """The seconds from the start of ``fit`` to the end of the run's last training step."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = self.end = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.start = self.clock()

    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.state.step == trainer.total_steps:
            self.end = self.clock()

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Bench:
    """One task's run for a budget of ``epochs`` epochs (or ``steps`` steps), its initial state, and its three loops."""

    def __init__(self, task: str, device: str, epochs: int, steps: Optional[int] = None) -> None:
        self.task, self.epochs, self.steps = task, epochs, steps
        budget = [f"trainer.max_epochs={epochs}", f"trainer.val_every_n_epochs={epochs}"]
        if steps:
            budget = [f"trainer.max_steps={steps}", "trainer.max_epochs=1000", "trainer.val_every_n_epochs=1000"]
        cfg = ptlab.compose([f"task={task}", f"device={device}", *budget, "trainer.progress=plain",
                             "checkpoint.save=false"])
        self.run: Run = ptlab.build(cfg)
        self.clock = Clock(self.run.device)
        self.initial = copy.deepcopy(self._state())

    def _state(self) -> dict[str, Any]:
        run = self.run
        return {"model": run.model.state_dict(), "optimizer": run.optimizers["main"].state_dict(),
                "scheduler": run.schedulers["main"].state_dict()}

    def reset(self) -> None:
        """Back to the initial weights, optimizer and scheduler state, and the same dropout stream."""
        state = copy.deepcopy(self.initial)
        self.run.model.load_state_dict(state["model"])
        self.run.optimizers["main"].load_state_dict(state["optimizer"])
        self.run.schedulers["main"].load_state_dict(state["scheduler"])
        torch.manual_seed(self.run.cfg.seed)

    @property
    def sides(self) -> dict[str, Callable[[], float]]:
        """Each loop, as a function returning its training seconds; plain only where it applies."""
        sides = {"ptlab": self.ptlab_seconds, "mirrored": self.mirrored_seconds}
        if self.task in LOSSES:
            sides["plain"] = self.plain_seconds
        return sides

    def ptlab_seconds(self) -> float:
        self.reset()
        timer = TrainingTimer(self.clock)
        Trainer(self.run, callbacks=[timer]).fit()
        return timer.seconds

    def mirrored_seconds(self) -> float:
        return self._timed(self._mirrored_lm_loop if self.steps else self._mirrored_loop)

    def plain_seconds(self) -> float:
        return self._timed(self._plain_loop)

    def _timed(self, loop: Callable[[], None]) -> float:
        self.reset()
        start = self.clock()
        loop()
        return self.clock() - start

    def _mirrored_loop(self) -> None:
        model, optimizer, scheduler = self.run.model, self.run.optimizers["main"], self.run.schedulers["main"]
        train, loss_fn = self.run.data.train, LOSSES[self.task]
        (x_all, y_all), n, size = train.tensors, train.num_samples, train.batch_size
        for epoch in range(self.epochs):
            model.train()
            order = epoch_permutation(n, train.seed, epoch).to(x_all.device)
            loss_sum = torch.zeros((), device=x_all.device)
            for lo in range(0, n, size):
                index = order[lo:lo + size]
                loss = loss_fn(model(x_all[index]), y_all[index])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                loss_sum += loss.detach()
            loss_sum.item()

    def _mirrored_lm_loop(self) -> None:
        """nanoGPT's loop: windows of the token stream, next-token cross-entropy, clip, step."""
        model, optimizer, scheduler = self.run.model, self.run.optimizers["main"], self.run.schedulers["main"]
        train = self.run.data.train
        stream, size, block = train.stream, train.batch_size, train.block_size
        offsets = torch.arange(block + 1, device=stream.device)
        params = [p for p in model.parameters() if p.requires_grad]
        step, epoch = 0, 0
        while step < self.steps:
            model.train()
            order = epoch_permutation(train.num_windows, train.seed, epoch)
            starts = (epoch_phase(block, train.seed, epoch) + order * block).to(stream.device)
            loss_sum = torch.zeros((), device=stream.device)
            for lo in range(0, len(starts), size):
                windows = stream[starts[lo:lo + size, None] + offsets]
                x, y = windows[:, :-1], windows[:, 1:]
                logits = model(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                loss_sum += loss.detach()
                step += 1
                if step == self.steps:
                    break
            loss_sum.item()
            epoch += 1

    def _plain_loop(self) -> None:
        """The loop of a tutorial: the task's optimizer with torch's defaults, randperm, slices, no scheduler."""
        model, loss_fn, cfg = self.run.model, LOSSES[self.task], self.run.cfg.optimizer
        optimizer = OPTIMIZERS[cfg.name](model.parameters(), lr=cfg.lr)
        x_all, y_all = self.run.data.train.tensors
        n, size = len(x_all), self.run.data.train.batch_size
        for _ in range(self.epochs):
            model.train()
            perm = torch.randperm(n, device=x_all.device)
            loss_sum = torch.zeros((), device=x_all.device)
            for i in range(0, n, size):
                index = perm[i:i + size]
                loss = loss_fn(model(x_all[index]), y_all[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
            loss_sum.item()

    def weights(self) -> list[Tensor]:
        return [t.detach().clone() for t in self.run.model.state_dict().values()]


def check_same_training(bench: Bench) -> None:
    """Run ptlab and the mirrored loop once (a warm-up) and require the same final weights."""
    bench.ptlab_seconds()
    ptlab_weights = bench.weights()
    bench.mirrored_seconds()
    pairs = list(zip(ptlab_weights, bench.weights()))
    if bench.run.device.type == "cuda":
        same = all(torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6) for a, b in pairs)
    else:
        same = all(torch.equal(a, b) for a, b in pairs)
    if not same:
        raise SystemExit(f"{bench.task}: ptlab and the mirrored loop ended with different weights; "
                         "the comparison would not be like for like")


def measure(long: Bench, short: Optional[Bench], rounds: int) -> dict[str, float]:
    """Median seconds per unit (epoch, or step for a language model) of each side over interleaved rounds.

    (long fit − short fit) / (units apart); without a short fit (``--epochs 1``), the long fit / its units.
    """
    benches = [b for b in (long, short) if b is not None]
    for bench in benches:
        check_same_training(bench)
        if "plain" in bench.sides:
            bench.plain_seconds()  # its warm-up

    def units(bench: Bench) -> int:
        return bench.steps or bench.epochs

    def seconds(name: str) -> float:
        if short is None:
            return long.sides[name]() / units(long)
        return (long.sides[name]() - short.sides[name]()) / (units(long) - units(short))

    names = list(long.sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(seconds(name))
    return {name: statistics.median(values) for name, values in times.items()}


def task_figures(bench: Bench, per_unit: dict[str, float]) -> dict[str, Any]:
    """The JSON entry of one task: seconds per epoch of each side, the ratios, and tokens/s for a language model."""
    steps_per_epoch = len(bench.run.data.train) if bench.steps else 1
    out: dict[str, Any] = {"device": bench.run.device.type, "unit": "step" if bench.steps else "epoch"}
    for side in ("ptlab", "mirrored", "plain"):
        value = per_unit.get(side)
        out[f"{side}_s_per_epoch"] = value * steps_per_epoch if value is not None else None
        if bench.steps:
            out[f"{side}_s_per_step"] = value
    out["ratio_mirrored"] = per_unit["ptlab"] / per_unit["mirrored"]
    out["ratio_plain"] = per_unit["ptlab"] / per_unit["plain"] if "plain" in per_unit else None
    if bench.steps:
        tokens = bench.run.data.train.batch_size * bench.run.data.train.block_size  # per step
        out["tokens_per_s"] = tokens / per_unit["ptlab"]
        out["mirrored_tokens_per_s"] = tokens / per_unit["mirrored"]
    else:
        out["samples_per_s"] = bench.run.data.train.num_samples / per_unit["ptlab"]
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="linreg,logreg,cnn,rnn,transformer", help="comma-separated task names")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved timing rounds per task")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the long fit for every epoch-timed task (the short fit is 1 epoch; with "
                             f"--epochs 1 there is no short fit; default: {EPOCHS})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps of the long fit for the language models (default: {STEPS})")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every side trains")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--ddp", type=int, default=0, metavar="N",
                        help="also time `ptlab train` per step in one process and under torchrun with N processes "
                             "(logreg and cnn, wall time of the training loop, one thread per process)")
    args = parser.parse_args()
    unknown = set(args.tasks.split(",")) - EPOCHS.keys() - STEPS.keys()
    if unknown:
        parser.error(f"--tasks: unknown {sorted(unknown)}; choose from {sorted({*EPOCHS, *STEPS})}")
    for key in ("epochs", "steps"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error(f"--{key}: at least 1")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    clock = "CPU time" if args.device == "cpu" else "wall time around cuda.synchronize"
    print(f"torch {torch.__version__}, 1 thread, {args.device}; median of {args.rounds} interleaved rounds ({clock}); "
          f"targets: ptlab/mirrored <= {TARGET_MIRRORED}, ptlab/plain <= {TARGET_PLAIN}")
    tasks = args.tasks.split(",")
    results: dict[str, dict[str, Any]] = {}
    epoch_tasks = [t for t in tasks if t in EPOCHS]
    if epoch_tasks:
        print(f"{'task':<8} {'epochs':>6} {'ptlab ms/ep':>12} {'mirrored ms/ep':>15} {'plain ms/ep':>12} "
              f"{'/mirrored':>10} {'/plain':>9}")
    for task in epoch_tasks:
        long_epochs, short_epochs = EPOCHS[task]
        long = Bench(task, args.device, args.epochs or long_epochs)
        short = Bench(task, args.device, short_epochs) if long.epochs > short_epochs else None
        figures = results[task] = task_figures(long, measure(long, short, args.rounds))
        ms = {side: figures[f"{side}_s_per_epoch"] * 1e3 for side in ("ptlab", "mirrored", "plain")}
        print(f"{task:<8} {span(long, short):>6} {ms['ptlab']:>12.2f} {ms['mirrored']:>15.2f} "
              f"{ms['plain']:>12.2f} {figures['ratio_mirrored']:>7.3f} {verdict(figures['ratio_mirrored'], TARGET_MIRRORED)}"
              f" {figures['ratio_plain']:>6.3f} {verdict(figures['ratio_plain'], TARGET_PLAIN)}")
    step_tasks = [t for t in tasks if t in STEPS]
    if step_tasks:
        print(f"{'task':<11} {'steps':>5} {'ptlab ms/step':>14} {'mirrored ms/step':>17} {'/mirrored':>10}   "
              f"{'ptlab tokens/s':>14} {'mirrored tokens/s':>17}")
    for task in step_tasks:
        long_steps, short_steps = args.steps or STEPS[task][0], STEPS[task][1]
        long = Bench(task, args.device, 1, long_steps)
        short = Bench(task, args.device, 1, short_steps) if long_steps > short_steps else None
        figures = results[task] = task_figures(long, measure(long, short, args.rounds))
        print(f"{task:<11} {span(long, short):>5} {figures['ptlab_s_per_step'] * 1e3:>14.2f} "
              f"{figures['mirrored_s_per_step'] * 1e3:>17.2f} {figures['ratio_mirrored']:>7.3f} "
              f"{verdict(figures['ratio_mirrored'], TARGET_MIRRORED)} {figures['tokens_per_s']:>14,.0f} "
              f"{figures['mirrored_tokens_per_s']:>17,.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.ddp:
        print(f"{'task':<8} {'1 process ms/step':>18} {f'torchrun x{args.ddp} ms/step':>20} {'ratio':>7}")
        for task in (t for t in tasks if t in ("logreg", "cnn")):
            one, many = ddp_step_seconds(task, args.ddp)
            print(f"{task:<8} {one * 1e3:>18.2f} {many * 1e3:>20.2f} {many / one:>7.3f}")


def ddp_step_seconds(task: str, processes: int, epochs: int = 5) -> tuple[float, float]:
    """Training seconds per optimizer step of ``ptlab train``: one process, then torchrun with ``processes``.

    The global batch is the same in both (data.batch_size is split across
    ranks), so the ratio is the price of DDP's all-reduce at this model size.
    """
    import os
    import subprocess
    import sys
    import tempfile

    launchers = ([], ["-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
                      "--master_port=29531"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    per_step = []
    for launcher in launchers:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, *launcher, "-m", "ptlab", "train", f"task={task}", f"trainer.max_epochs={epochs}",
                   "checkpoint.save=false", "trainer.progress=plain", f"hydra.run.dir={tmp}/run"]
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
            per_step.append(metrics["train_seconds"] / metrics["step"])
    return per_step[0], per_step[1]


def span(long: Bench, short: Optional[Bench]) -> str:
    """The fits a figure comes from: "21-1" (long minus short) or "1"."""
    units = [b.steps or b.epochs for b in (long, short) if b is not None]
    return "-".join(map(str, units))


def verdict(ratio: float, target: float) -> str:
    return "ok  " if ratio <= target else "SLOW"


if __name__ == "__main__":
    main()
