"""After a sweep: a Rich table of all its jobs, best first, and ``summary.csv`` in the sweep folder.

A Hydra callback (``hydra.callbacks.sweep_summary`` in configs/hydra/default.yaml).
Everything is read from the job folders, so it works with any sweeper and
launcher, lists the trials of earlier runs of the same sweep too, and shows
failed and unfinished jobs. If a job failed in this run, ``ptlab train -m``
exits with code 1 after the summary (Hydra gives callbacks no other way to set
the exit status).
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback

from ptlab.atomic import read_json, write_text
from ptlab.formatting import cell
from ptlab.overrides import all_keys, naming_keys, override_values
from ptlab.sweep.job import RECORD, objective_value

STATUS_STYLES = {"completed": "green", "resumed": "green", "skipped": "dim", "failed": "bold red",
                 "interrupted": "yellow", "unfinished": "yellow", "pruned": "magenta"}


@dataclass
class Job:
    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any]
    status: str
    error: Optional[str]
    objective: Optional[float]
    recorded_at: float  # when job.json was written (0: never)


def read_jobs(sweep_dir: Path, objective: str) -> list[Job]:
    """Every job folder of ``sweep_dir`` (those with .hydra/overrides.yaml)."""
    import yaml

    jobs = []
    for folder in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()):
        saved = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
        overrides = override_values(map(str, saved))
        metrics_file, record_file = folder / "metrics.json", folder / RECORD
        metrics = read_json(metrics_file)  # missing or torn: the job has not finished
        metrics = metrics if isinstance(metrics, dict) else {}
        record = read_json(record_file)
        record = record if isinstance(record, dict) else {}
        status = record.get("status") or ("completed" if metrics else "unfinished")
        value = objective_value(metrics, objective)
        jobs.append(Job(folder, overrides, metrics, status, record.get("error"),
                        value if value is not None and math.isfinite(value) else None,
                        record_file.stat().st_mtime if record_file.is_file() else 0.0))
    return jobs


def ranked(jobs: list[Job], mode: str) -> list[Job]:
    """Best objective first; then the jobs an Optuna pruner stopped early (their value is of a shorter run), best
    first; jobs without an objective last."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(jobs, key=lambda j: (j.objective is None, j.status == "pruned",
                                       sign * j.objective if j.objective is not None else 0.0))


def swept_keys(jobs: list[Job]) -> list[str]:
    """Override keys whose value differs between jobs (all of them when there is one job)."""
    overrides = [job.overrides for job in jobs]
    return naming_keys(overrides)


def metric_columns(jobs: list[Job], objective: str) -> tuple[list[str], list[str]]:
    """(the table's metric columns, the CSV's): the objective first, then val/*, test/*, the rest."""
    names = sorted({k for job in jobs for k in job.metrics} - {objective})
    order = [n for n in names if n.startswith("val/")] + [n for n in names if n.startswith("test/")]
    everything = [objective, *order, *[n for n in names if n not in order]]
    validated = [objective, *[n for n in order if n.startswith("val/")]]
    tested = [f"test/{n.partition('/')[2]}" for n in validated]  # not baselines such as test/acc_sklearn
    key = list(dict.fromkeys([*validated, *[n for n in tested if n in names or n == objective]]))
    return key, everything


def write_csv(jobs: list[Job], keys: list[str], metrics: list[str], path: Path) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["rank", "job", "status", *keys, *metrics, "error"])
    for rank, job in enumerate(jobs, 1):
        writer.writerow([rank, job.folder.name, job.status, *[job.overrides.get(k, "") for k in keys],
                         *[job.metrics.get(m, "") for m in metrics], job.error or ""])
    write_text(path, text.getvalue())


def print_table(jobs: list[Job], swept: list[str], metrics: list[str], title: str, caption: str) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.text import Text
    from rich.table import Table

    from ptlab.logging.console import console

    table = Table(title=title, caption=caption)
    table.add_column("#", justify="right")
    for key in swept:
        table.add_column(key)
    for i, name in enumerate(metrics):
        table.add_column(name, justify="right", style="bold" if i == 0 else None)
    table.add_column("status")
    table.add_column("job")
    for rank, job in enumerate(jobs, 1):
        status = f"[{STATUS_STYLES.get(job.status, '')}]{job.status}[/]"
        table.add_row(str(rank), *[Text(job.overrides.get(k, "")) for k in swept],  # [a,b] is a value, not markup
                      *[cell(job.metrics.get(m)) for m in metrics], status, job.folder.name)
    out = console()
    if not out.is_terminal:  # a pipe or a log file gets the whole table, not one squeezed into 80 columns
        width = Measurement.get(out, out.options.update_width(10_000), table).maximum
        out = Console(highlight=False, width=max(width, out.width), file=out.file)
    out.print(table)
    for job in jobs:
        if job.status == "failed":
            console().print(f"failed: {job.folder}: {job.error} (see its train.log)", markup=False, soft_wrap=True)


def summarize(sweep_dir: Path, objective: str, mode: str) -> list[Job]:
    """Print the table and write ``summary.csv``; return the jobs, best first."""
    jobs = ranked(read_jobs(sweep_dir, objective), mode)
    if not jobs:
        return jobs
    swept = swept_keys(jobs)
    key_metrics, all_metrics = metric_columns(jobs, objective)
    write_csv(jobs, all_keys([job.overrides for job in jobs]), all_metrics, sweep_dir / "summary.csv")
    common = sorted({f"{k}={v}" for job in jobs for k, v in job.overrides.items() if k not in swept})
    print_table(jobs, swept, key_metrics,
                title=f"{len(jobs)} jobs, best {objective} ({mode}) first",
                caption=" ".join([*common, f"→ {sweep_dir / 'summary.csv'}"]))
    return jobs


class SweepSummary(Callback):
    """Hydra callback: the summary after a multirun; exit code 1 if a job failed during it."""

    started = 0.0  # when this multirun began

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if config.hydra.job.name != "train":  # `ptlab lr-find -m` shares the Hydra config; its jobs train nothing
            return
        jobs = summarize(Path(str(config.hydra.sweep.dir)), str(config.sweep.objective), str(config.sweep.mode))
        if any(job.status == "failed" and job.recorded_at >= self.started - 1 for job in jobs):
            raise SystemExit(1)
