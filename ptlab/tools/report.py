"""``ptlab report``: pictures and a one-page ``report.md`` from finished runs.

Everything is read from what a run already wrote:

    tb/                 the curves: every ``split/metric`` scalar, against the optimizer step
    metrics.json        the final metrics table
    .hydra/             overrides.yaml names each run in legends; config.yaml gives a sweep's objective
    samples/epoch_NNN.png   a generative run's latest sample grid

One figure per metric name overlays every run (colour) and split (line style:
train solid, val dashed), so ``train/loss`` and ``val/loss`` share a figure
and a widening gap between them is overfitting you can see (the y axis turns
logarithmic when the values span more than two decades). A sweep folder
(the folder of ``ptlab train -m``, one subfolder per job) adds one figure per swept
parameter: the sweep's objective (``checkpoint.monitor``) against its values.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ptlab.errors import PtlabError
from ptlab.formatting import cell, is_number
from ptlab.overrides import differing_keys, naming_keys, override_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SPLIT_STYLES = {"train": "-", "val": "--"}  # other splits: dotted
FIRST_COLUMNS = ("val/", "test/")  # metrics.json keys in this order, then the rest


@dataclass
class RunRecord:
    """What one run directory holds."""

    folder: Path
    overrides: dict[str, str]
    config: dict[str, Any]
    metrics: Optional[dict[str, Any]]
    scalars: dict[str, list[tuple[int, float]]]
    samples: Optional[Path]
    label: str = ""


@dataclass
class Sweep:
    folder: Path
    runs: list[RunRecord] = field(default_factory=list)


def write_report(folders: list[Path], out: Optional[Path] = None) -> Path:
    """Read ``folders`` (runs or sweeps), write PNGs and report.md into ``out``; return report.md's path.

    ``out`` defaults to ``FOLDER/report`` for one folder and ``./report`` for several.
    """
    runs, sweeps = [], []
    for folder in folders:
        if not folder.is_dir():
            raise PtlabError(f"report: {folder} is not a folder; give a run directory or a sweep folder")
        if is_run(folder):
            runs.append(read_run(folder))
        elif jobs := sweep_jobs(folder):
            sweeps.append(Sweep(folder, [read_run(job) for job in jobs]))
            runs += sweeps[-1].runs
        else:
            raise PtlabError(f"report: {folder} is neither a ptlab run (with .hydra/, metrics.json or tb/) nor a "
                             "sweep folder (job folders that are runs); give e.g. outputs/cnn/RUN or "
                             "outputs/cnn/multirun/SWEEP")
    name_runs(runs)
    out = out if out is not None else (folders[0] / "report" if len(folders) == 1 else Path("report"))
    out.mkdir(parents=True, exist_ok=True)
    curves = plot_curves(runs, out)
    sweep_figures = [(sweep, plot_sweep(sweep, out, f"sweep{i}_" if len(sweeps) > 1 else "sweep_"))
                     for i, sweep in enumerate(sweeps)]
    samples = []
    for i, run in enumerate(runs):
        if run.samples is not None:
            copy = out / f"samples_{i}.png"
            shutil.copyfile(run.samples, copy)
            samples.append((run, run.samples, copy))
    page = out / "report.md"
    page.write_text(markdown(runs, curves, sweep_figures, samples), encoding="utf-8")
    return page


# --- reading ---------------------------------------------------------------------------------

def is_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (".hydra", "metrics.json", "tb"))


def sweep_jobs(folder: Path) -> list[Path]:
    """The job folders of a sweep (its subfolders that are runs), in Hydra's job order."""
    jobs = [p for p in folder.iterdir() if p.is_dir() and is_run(p)]
    return sorted(jobs, key=lambda p: (job_number(p), p.name))


def job_number(job: Path) -> int:
    """``hydra.job.num`` from the job's .hydra/hydra.yaml (-1 when it is not there)."""
    import yaml

    saved = job / ".hydra" / "hydra.yaml"
    if not saved.is_file():
        return -1
    number = ((yaml.safe_load(saved.read_text()) or {}).get("hydra", {}).get("job") or {}).get("num")
    return number if isinstance(number, int) else -1


def read_config(path: Path) -> dict[str, Any]:
    """A run's saved config with its interpolations resolved (``sweep.objective: ${checkpoint.monitor}``)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        return {}
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
    except OmegaConfBaseException:  # an interpolation this process cannot resolve: take the file as written
        import yaml

        return yaml.safe_load(path.read_text()) or {}


def read_run(folder: Path) -> RunRecord:
    import yaml

    hydra = folder / ".hydra"
    saved = (yaml.safe_load((hydra / "overrides.yaml").read_text()) or []) if (hydra / "overrides.yaml").is_file() else []
    overrides = {k: v for k, v in override_values(map(str, saved)).items() if not k.startswith("hydra.")}
    config = read_config(hydra / "config.yaml")
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    grids = sorted((folder / "samples").glob("epoch_*.png"))
    return RunRecord(folder, overrides, config or {}, metrics, read_scalars(folder / "tb"), grids[-1] if grids else None)


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files under ``folder`` → [(step, value)] by step.

    A resumed run repeats the steps logged after its last checkpoint; the value
    written last (by wall time) wins.
    """
    if not folder.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0})  # 0: keep every point
        accumulator.Reload()
        for tag in accumulator.Tags()[SCALARS]:
            events[tag] += [(e.wall_time, e.step, e.value) for e in accumulator.Scalars(tag)]
    scalars = {}
    for tag, points in events.items():
        by_step = {step: value for _, step, value in sorted(points)}
        scalars[tag] = sorted(by_step.items())
    return scalars


def name_runs(runs: list[RunRecord]) -> None:
    """Label each run by the overrides that differ between the runs (all of them for one run), else its folder."""
    overrides = [run.overrides for run in runs]
    differing = sorted(naming_keys(overrides))
    for run in runs:
        parts = [f"{k}={run.overrides[k]}" for k in differing if k in run.overrides]
        run.label = " ".join(parts) or str(run.folder.name)
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:  # the same overrides twice: tell them apart by folder
            run.label = f"{run.label} ({run.folder.parent.name}/{run.folder.name})"


# --- figures ---------------------------------------------------------------------------------

def curve_names(runs: list[RunRecord]) -> list[str]:
    """The metric names (``loss``, ``acc``, ``lr``, ...) that some run logged for a split other than test."""
    return sorted({tag.partition("/")[2] for run in runs for tag in run.scalars
                   if "/" in tag and not tag.startswith("test/")})


def plot_curves(runs: list[RunRecord], out: Path) -> list[tuple[str, Path]]:
    """One PNG per metric name (``curve_loss.png``, ...): every run and split that logged it."""
    written = []
    for name in curve_names(runs):
        path = out / f"curve_{slug(name)}.png"
        curve_figure(runs, name).savefig(path, dpi=110)
        written.append((name, path))
    return written


def curve_figure(runs: list[RunRecord], name: str) -> Figure:
    """Metric ``name`` of every run (a colour each) and split (train solid, val dashed, others dotted) by step.

    The y axis is logarithmic when the plotted values are positive and span two decades or more.
    """
    from ptlab.tools.figures import new_figure

    fig = new_figure()
    ax = fig.add_subplot()
    plotted: list[float] = []
    for i, run in enumerate(runs):
        for tag, points in sorted(run.scalars.items()):
            split, _, metric = tag.partition("/")
            if metric != name or split == "test" or not points:
                continue
            steps, values = zip(*points)
            label = split if len(runs) == 1 else f"{run.label} · {split}"
            ax.plot(steps, values, color=f"C{i % 10}", linestyle=SPLIT_STYLES.get(split, ":"),
                    marker="o" if len(points) == 1 else None, label=label)
            plotted += values
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(name)
    if min(plotted) > 0 and max(plotted) >= 100 * min(plotted):  # e.g. a training loss near 0 next to val/loss
        ax.set_yscale("log")
    ax.set_title(name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_sweep(sweep: Sweep, out: Path, prefix: str) -> list[tuple[str, Path]]:
    """One PNG per parameter whose value differs between the sweep's jobs: the objective against its values."""
    written = []
    for key in sorted(differing_keys([run.overrides for run in sweep.runs])):
        fig = sweep_figure(sweep, key)
        if fig is None:
            continue
        path = out / f"{prefix}{slug(key)}.png"
        fig.savefig(path, dpi=110)
        written.append((key, path))
    return written


def sweep_figure(sweep: Sweep, key: str) -> Optional[Figure]:
    """The sweep's objective of each finished job against its value of ``key`` (None: no finished job).

    Numeric values: a scatter of the jobs, the mean per value joined by a line when values repeat (seeds), and a
    log x axis when they span a decade or more. Other values: one column per category.
    """
    from ptlab.tools.figures import new_figure

    objective = objective_of(sweep)
    finished = [run for run in sweep.runs if run.metrics and isinstance(run.metrics.get(objective), (int, float))]
    points = [(run.overrides.get(key, "(default)"), float(run.metrics[objective])) for run in finished]
    if not points:
        return None
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    if all(is_number(x) for x, _ in points):
        by_value: dict[float, list[float]] = defaultdict(list)
        for x, y in points:
            by_value[float(x)].append(y)
        xs = sorted(by_value)
        if any(len(ys) > 1 for ys in by_value.values()):  # repeated values (e.g. seeds): join their means
            ax.plot(xs, [sum(by_value[x]) / len(by_value[x]) for x in xs], color="C0", alpha=0.6, label="mean")
        ax.scatter([float(x) for x, _ in points], [y for _, y in points], color="C0", zorder=3, label="job")
        if xs[0] > 0 and xs[-1] / xs[0] >= 10:
            ax.set_xscale("log")
    else:
        categories = sorted({x for x, _ in points})
        ax.scatter([categories.index(x) for x, _ in points], [y for _, y in points], color="C0", zorder=3,
                   label="job")
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(key)
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} vs {key}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def objective_of(sweep: Sweep) -> str:
    """The metric the sweep optimizes: ``sweep.objective`` of its jobs (``val/loss`` if unknown)."""
    return sweep_setting(sweep.runs, "objective", "monitor") or "val/loss"


def sweep_setting(runs: list[RunRecord], key: str, checkpoint_key: str) -> Optional[str]:
    """``sweep.KEY`` of the first run that has it; runs saved before ``sweep.*`` existed: ``checkpoint.KEY``."""
    for run in runs:
        value = (run.config.get("sweep") or {}).get(key) or (run.config.get("checkpoint") or {}).get(checkpoint_key)
        if value:
            return str(value)
    return None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# --- the page --------------------------------------------------------------------------------

def markdown(runs: list[RunRecord], curves: list[tuple[str, Path]],
             sweeps: list[tuple[Sweep, list[tuple[str, Path]]]], samples: list[tuple[RunRecord, Path, Path]]) -> str:
    lines = ["# ptlab report", ""]
    lines += ["| run | folder | overrides |", "|---|---|---|"]
    for run in runs:
        overrides = " ".join(f"`{k}={v}`" for k, v in run.overrides.items()) or "(defaults)"
        lines.append(f"| {run.label} | `{run.folder}` | {overrides} |")
    lines += ["", "## Final metrics", "", "From each run's `metrics.json`; `val/*` are the values of the best "
              "checkpoint, `test/*` were measured with it.", ""]
    lines += metrics_table(runs)
    for sweep, figures in sweeps:
        objective = objective_of(sweep)
        lines += ["", f"## Sweep `{sweep.folder}`: {objective} vs each swept parameter", ""]
        best = best_run(sweep, objective)
        if best is not None:
            lines += [f"Best {objective}: {best.metrics[objective]:.6g} — {best.label} (`{best.folder.name}`).", ""]
        lines += [f"![{objective} vs {key}]({path.name})" for key, path in figures] or ["(no finished jobs)"]
    lines += ["", "## Curves", ""]
    lines += [f"![{name}]({path.name})" for name, path in curves] or ["(no TensorBoard scalars in tb/)"]
    if samples:
        lines += ["", "## Samples", ""]
        for run, source, copy in samples:
            lines += [f"{run.label}: `{source}`", "", f"![samples of {run.label}]({copy.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def metrics_table(runs: list[RunRecord]) -> list[str]:
    keys = {k for run in runs if run.metrics for k in run.metrics}
    first = [sorted(k for k in keys if k.startswith(prefix)) for prefix in FIRST_COLUMNS]
    columns = [k for group in first for k in group] + sorted(k for k in keys if not k.startswith(FIRST_COLUMNS))
    rows = ["| run | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for run in runs:
        if run.metrics is None:
            rows.append(f"| {run.label} (unfinished: no metrics.json) |" + " |" * len(columns))
            continue
        rows.append(f"| {run.label} | " + " | ".join(cell(run.metrics.get(k), digits=4) for k in columns) + " |")
    return rows


def best_run(sweep: Sweep, objective: str) -> Optional[RunRecord]:
    finished = [run for run in sweep.runs if run.metrics and isinstance(run.metrics.get(objective), (int, float))]
    if not finished:
        return None
    pick = max if sweep_setting(finished, "mode", "mode") == "max" else min
    return pick(finished, key=lambda run: run.metrics[objective])
