"""Check the language-model tasks' quality targets at their default budgets. Not a test (it takes minutes).

    .venv/bin/python scripts/bench_text_tasks.py [--tasks rnn,transformer]

Each task's default config (``ptlab.compose(["task=NAME"])``: 300 steps of 32 × 128
characters of the CPython docs) is trained with ``ptlab.train`` in this one process,
on two CPU threads (``torch.set_num_threads(2)``), and its ``val/loss`` (the best
checkpoint's) is compared with the target that README.md quotes. The table gives
task, steps, val/loss, target and ok (plus test/loss and wall time); the exit status
is 1 when any task misses its target.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import ptlab

TARGETS = {"rnn": 1.55, "transformer": 2.15}  # val/loss at the default budget, nats per character


def measure(task: str) -> dict[str, float]:
    """Train ``task``'s default config; its final metrics plus ``wall_seconds``."""
    started = time.perf_counter()
    metrics = ptlab.train(ptlab.compose([f"task={task}", "trainer.progress=plain"]))
    return {**metrics, "wall_seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TARGETS), help="comma-separated, of: " + ", ".join(TARGETS))
    tasks = parser.parse_args(argv).tasks.split(",")
    unknown = [task for task in tasks if task not in TARGETS]
    if unknown:
        parser.error(f"--tasks: no target for {', '.join(unknown)}; use {', '.join(TARGETS)}")
    torch.set_num_threads(2)
    results = {task: measure(task) for task in tasks}
    print(f"{'task':<12} {'steps':>5} {'val/loss':>9} {'target':>7} {'ok':<4} {'test/loss':>9} {'wall s':>7}")
    for task, m in results.items():
        ok = m["val/loss"] <= TARGETS[task]
        print(f"{task:<12} {m['step']:>5} {m['val/loss']:>9.3f} {TARGETS[task]:>7.2f} {'ok' if ok else 'MISS':<4} "
              f"{m['test/loss']:>9.3f} {m['wall_seconds']:>7.0f}")
    return 0 if all(m["val/loss"] <= TARGETS[task] for task, m in results.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
