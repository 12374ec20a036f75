"""How long ptlab takes before and after training, against ``import torch`` on the same machine (issue 13). Not a test.

    .venv/bin/python scripts/bench_startup.py [--rounds 5] [--task logreg] [--json PATH]

Each round runs, one after the other in a fresh interpreter:

* ``python -c "import torch"``: the floor any PyTorch program pays;
* ``ptlab --help`` and ``ptlab list``: the commands that must not import torch;
* ``ptlab train task=logreg trainer.progress=plain hydra.run.dir=<tmp>``: its
  wall time minus the ``train_seconds`` of its metrics.json, i.e. everything
  that is not the training loop: imports, building the run, validation, the
  test pass and baselines, checkpoints, logs.

The rounds interleave the commands so that a change in the machine's load hits
all of them alike; the table shows medians. Wall time is what a user waits;
the CPU time of each command (user + system, from ``getrusage``) is printed
beside it, since on a shared machine wall time also counts the waits for a core.
Targets: the train overhead at most ``TRAIN_TARGET`` × ``import torch``;
``--help`` and ``list`` under ``QUICK_TARGET_S`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TRAIN_TARGET = 1.5  # × the wall time of `python -c "import torch"`
QUICK_TARGET_S = 0.3  # `ptlab --help`, `ptlab list`


def ptlab_command() -> list[str]:
    """The console script next to this interpreter, as a user runs it; ``python -m ptlab`` without one."""
    script = Path(sys.executable).parent / "ptlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptlab"]


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``cmd``; its output is discarded, a failure raises."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_round(task: str, cwd: Path) -> dict[str, tuple[float, float]]:
    """Every command once: name → (wall, CPU) seconds; the train entry has its train_seconds taken out of both."""
    ptlab = ptlab_command()
    out = {
        "import torch": timed([sys.executable, "-c", "import torch"], cwd),
        "ptlab --help": timed([*ptlab, "--help"], cwd),
        "ptlab list": timed([*ptlab, "list"], cwd),
    }
    with tempfile.TemporaryDirectory(dir=cwd) as tmp:
        run_dir = Path(tmp) / "run"
        wall, cpu = timed([*ptlab, "train", f"task={task}", "trainer.progress=plain", f"hydra.run.dir={run_dir}"], cwd)
        trained = json.loads((run_dir / "metrics.json").read_text())["train_seconds"]
    out[f"train {task} - train_seconds"] = (wall - trained, cpu - trained)
    out["train_seconds"] = (trained, trained)
    return out


def summarize(rounds: list[dict[str, tuple[float, float]]], task: str) -> dict[str, Any]:
    """Medians over the rounds, the overhead ratio and whether each target holds."""
    names = list(rounds[0])
    wall = {name: statistics.median(r[name][0] for r in rounds) for name in names}
    cpu = {name: statistics.median(r[name][1] for r in rounds) for name in names}
    overhead = f"train {task} - train_seconds"
    ratio = wall[overhead] / wall["import torch"]
    return {
        "rounds": len(rounds),
        "task": task,
        "wall_s": wall,
        "cpu_s": cpu,
        "train_overhead_ratio": ratio,
        "train_overhead_ratio_cpu": cpu[overhead] / cpu["import torch"],
        "ok": {
            "train_overhead": ratio <= TRAIN_TARGET,
            "help": wall["ptlab --help"] < QUICK_TARGET_S,
            "list": wall["ptlab list"] < QUICK_TARGET_S,
        },
    }


def print_table(summary: dict[str, Any]) -> None:
    wall, cpu, ok = summary["wall_s"], summary["cpu_s"], summary["ok"]
    overhead = f"train {summary['task']} - train_seconds"
    targets = {
        "ptlab --help": (f"< {QUICK_TARGET_S} s", ok["help"]),
        "ptlab list": (f"< {QUICK_TARGET_S} s", ok["list"]),
        overhead: (f"<= {TRAIN_TARGET} x import torch ({summary['train_overhead_ratio']:.2f} x; "
                   f"CPU {summary['train_overhead_ratio_cpu']:.2f} x)", ok["train_overhead"]),
    }
    width = max(map(len, wall))
    print(f"median of {summary['rounds']} interleaved rounds")
    print(f"{'command':<{width}} {'wall s':>7} {'CPU s':>7}  target")
    for name in wall:
        target, passed = targets.get(name, ("", None))
        mark = "" if passed is None else ("ok  " if passed else "MISS")
        print(f"{name:<{width}} {wall[name]:>7.2f} {cpu[name]:>7.2f}  {mark} {target}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--task", default="logreg", help="the task whose `ptlab train` is timed (default logreg)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary as JSON")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)  # runs write nothing into the checkout
        rounds = []
        for i in range(args.rounds):
            rounds.append(one_round(args.task, cwd))
            print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    summary = summarize(rounds, args.task)
    summary["python"] = sys.version.split()[0]
    summary["load_average"] = os.getloadavg()[0]
    print_table(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
