"""Tabular builders: bundled scikit-learn sets and user CSV files (splits, standardization, errors, CLI)."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, read_metrics, run_ptlab, train_here
from ptlab.data.loaders import Data
from ptlab.data.tabular import breast_cancer, csv_table, diabetes
from ptlab.errors import ConfigError

CPU = torch.device("cpu")


def split(data: Data, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The (features, target) tensors of one split."""
    return getattr(data, name).tensors


def sizes(data: Data) -> list[int]:
    return [len(split(data, name)[0]) for name in ("train", "val", "test")]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def regression_rows(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(5, 2, n), rng.normal(-3, 0.5, n)
    return [[x1, x2, 3 * x1 - x2] for x1, x2 in zip(a, b)]


def test_diabetes_splits_add_up_and_train_rows_are_standardized() -> None:
    data = diabetes(target_kind="regression", device=CPU, seed=0)
    assert sum(sizes(data)) == 442
    assert sizes(data)[1] == sizes(data)[2] == 67  # 15% each of all rows
    x, y = split(data, "train")
    assert x.dtype == y.dtype == torch.float32 and x.shape[1] == 10 and data.info["in_features"] == 10
    assert torch.allclose(x.mean(0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(10), atol=1e-4)
    assert abs(y.mean().item()) < 1e-5 and abs(y.std(unbiased=False).item() - 1) < 1e-4
    assert abs(split(data, "test")[0].mean().item()) > 1e-4  # test rows use the training statistics
    assert data.info["target_mean"] == pytest.approx(153.3, abs=0.1)  # the scale travels with the data
    assert data.info["target_std"] == pytest.approx(77.5, abs=0.1)


def test_diabetes_target_stays_raw_when_asked() -> None:
    data = diabetes(standardize_target=False, target_kind="regression", device=CPU, seed=0)
    y = split(data, "train")[1]
    assert y.min() >= 25 and y.max() <= 346 and y.mean() > 100
    assert (data.info["target_mean"], data.info["target_std"]) == (0.0, 1.0)


def test_split_seed_fixes_the_rows_and_seed_does_not() -> None:
    first = breast_cancer(split_seed=1, target_kind="classification", device=CPU, seed=0)
    again = breast_cancer(split_seed=1, target_kind="classification", device=CPU, seed=9)
    other = breast_cancer(split_seed=2, target_kind="classification", device=CPU, seed=0)
    for name in ("train", "val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(split(first, name), split(again, name)))
    assert sizes(first) == sizes(other)
    assert not torch.equal(split(first, "test")[0], split(other, "test")[0])


def test_breast_cancer_is_split_stratified() -> None:
    data = breast_cancer(target_kind="classification", device=CPU, seed=0)
    assert sum(sizes(data)) == 569 and data.info == {"in_features": 30, "num_classes": 2}
    overall = torch.cat([split(data, name)[1] for name in ("train", "val", "test")]).float().mean().item()
    for name in ("train", "val", "test"):
        y = split(data, name)[1]
        assert y.dtype == torch.long
        assert abs(y.float().mean().item() - overall) < 0.01


def test_builders_check_the_objective() -> None:
    with pytest.raises(ConfigError, match="objective=regression"):
        diabetes(target_kind="classification", device=CPU, seed=0)
    with pytest.raises(ConfigError, match="objective=classification"):
        breast_cancer(target_kind="regression", device=CPU, seed=0)


def test_csv_regression_carves_missing_splits(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", ["a", "b", "y"], regression_rows(100))
    data = csv_table(train_path=str(path), target="y", batch_size=16, target_kind="regression", device=CPU, seed=0)
    train_rows, val_rows, test_rows = sizes(data)
    assert train_rows + val_rows + test_rows == 100 and data.info["in_features"] == 2
    assert test_rows == 15 and val_rows in (15, 16)  # sklearn rounds a carved split up
    x, y = split(data, "train")
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-5) and abs(y.mean().item()) < 1e-5
    assert len(data.train) == -(-train_rows // 16)


def test_csv_regression_with_val_and_test_files(tmp_path: Path) -> None:
    rows = regression_rows(60)
    train = write_csv(tmp_path / "train.csv", ["a", "b", "y"], rows[:40])
    val = write_csv(tmp_path / "val.csv", ["a", "b", "y"], rows[40:50])
    test = write_csv(tmp_path / "test.csv", ["a", "b", "y"], rows[50:])
    data = csv_table(train_path=str(train), val_path=str(val), test_path=str(test), target="y",
                     target_kind="regression", device=CPU, seed=0)
    assert sizes(data) == [40, 10, 10]
    raw = np.asarray(rows, dtype=np.float64)
    mean, std = raw[:40, 0].mean(), raw[:40, 0].std()
    expected = torch.tensor((raw[50:, 0] - mean) / std, dtype=torch.float32)
    assert torch.allclose(split(data, "test")[0][:, 0], expected, atol=1e-5)


def test_csv_fractions_are_of_the_training_file_when_one_split_is_given(tmp_path: Path) -> None:
    rows = regression_rows(120)
    train = write_csv(tmp_path / "train.csv", ["a", "b", "y"], rows[:100])
    other = write_csv(tmp_path / "other.csv", ["a", "b", "y"], rows[100:])
    given_test = csv_table(train_path=str(train), test_path=str(other), target="y", val_fraction=0.2,
                           target_kind="regression", device=CPU, seed=0)
    assert sizes(given_test) == [80, 20, 20]
    given_val = csv_table(train_path=str(train), val_path=str(other), target="y", test_fraction=0.3,
                          target_kind="regression", device=CPU, seed=0)
    assert sizes(given_val) == [70, 20, 30]


def test_csv_classification_maps_string_labels_to_ids(tmp_path: Path) -> None:
    rows = [[i, i % 3, "dog" if i % 2 else "cat"] for i in range(40)]
    train = write_csv(tmp_path / "train.csv", ["x1", "x2", "animal"], rows)
    data = csv_table(train_path=str(train), target="animal", target_kind="classification", device=CPU, seed=0)
    assert data.info == {"in_features": 2, "num_classes": 2}
    assert sum(sizes(data)) == 40
    for name in ("train", "val", "test"):
        x, y = split(data, name)
        assert y.dtype == torch.long and set(y.tolist()) == {0, 1}  # stratified: both classes everywhere
    test = write_csv(tmp_path / "test.csv", ["x1", "x2", "animal"], [[1, 1, "dog"], [2, 2, "cat"], [3, 0, "dog"]])
    data = csv_table(train_path=str(train), test_path=str(test), target="animal", target_kind="classification",
                     device=CPU, seed=0)
    assert split(data, "test")[1].tolist() == [1, 0, 1]  # cat → 0, dog → 1


def test_csv_numeric_labels_sort_as_numbers(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["x", "label"], [[i, [10, 2, 7][i % 3]] for i in range(30)])
    test = write_csv(tmp_path / "test.csv", ["x", "label"], [[0, 10], [1, 2], [2, 7]])
    data = csv_table(train_path=str(train), test_path=str(test), target="label", target_kind="classification",
                     device=CPU, seed=0)
    assert data.info["num_classes"] == 3
    assert split(data, "test")[1].tolist() == [2, 0, 1]  # 2 → 0, 7 → 1, 10 → 2 (not "10" < "2")


def test_csv_reads_spreadsheet_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train.csv"
    rows = "".join(f"{i},{2 * i}\n" for i in range(20))
    path.write_text("\ufeffx,y\n" + rows + "\n\n", encoding="utf-8")  # byte-order mark, trailing blank lines
    monkeypatch.setenv("HOME", str(tmp_path))
    data = csv_table(train_path="~/train.csv", target="y", target_kind="regression", device=CPU, seed=0)
    assert sum(sizes(data)) == 20


def test_csv_constant_training_column_stays_finite(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["flag", "x", "y"], [[0, i, i] for i in range(30)])
    test = write_csv(tmp_path / "test.csv", ["flag", "x", "y"], [[1, 3, 3], [0, 4, 4]])
    data = csv_table(train_path=str(train), test_path=str(test), target="y", target_kind="regression",
                     device=CPU, seed=0)
    assert split(data, "test")[0][:, 0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("header,rows,target,kind,match", [
    (["a", "b"], [[1, 2]], "price", "regression", r"^data\.target: column 'price' is not in .*; its columns are a, b$"),
    (["a", "y"], [[1, ""]], "y", "regression", r"^data\.missing: the target 'y' of .* cannot be filled in"),
    (["a", "y"], [[1, "n/a"]], "y", "regression", r"^data\.target: column 'y' .* regression target"),
    (["a", "y"], [[1, 2], [3]], "y", "regression", r"^data\.train_path: .* line 3 has 1 fields, the header has 2"),
    (["a", "y"], [["inf", 1]], "y", "regression", r"^data\.train_path: column 'a' .* nan or inf"),
    (["a", "y"], [], "y", "regression", r"^data\.train_path: .* no data rows"),
    (["a", "y"], [[i, "cat"] for i in range(10)], "y", "classification", r"^data\.target: .* single class \('cat'\)"),
])
def test_csv_errors_name_the_key(tmp_path: Path, header: list[str], rows: list[list], target: str, kind: str,
                                 match: str) -> None:
    path = write_csv(tmp_path / "train.csv", header, rows)
    with pytest.raises(ConfigError, match=match):
        csv_table(train_path=str(path), target=target, target_kind=kind, device=CPU, seed=0)


def test_csv_errors_between_files(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["x", "y"], [[i, "cat" if i % 2 else "dog"] for i in range(20)])
    test = write_csv(tmp_path / "test.csv", ["x", "y"], [[1, "cat"], [2, "bird"]])
    with pytest.raises(ConfigError, match=r"^data\.target: labels \['bird'\] are not in the training file"):
        csv_table(train_path=str(train), test_path=str(test), target="y", target_kind="classification",
                  device=CPU, seed=0)
    swapped = write_csv(tmp_path / "val.csv", ["y", "z"], [["cat", 1], ["dog", 2]])
    with pytest.raises(ConfigError, match=r"^data\.val_path: .* feature columns z; the training file has x"):
        csv_table(train_path=str(train), val_path=str(swapped), target="y", target_kind="classification",
                  device=CPU, seed=0)


def test_csv_too_few_rows_of_a_class_to_stratify(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["x", "y"], [[i, "a" if i else "b"] for i in range(20)])
    with pytest.raises(ConfigError, match=r"^data\.test_fraction: cannot carve"):
        csv_table(train_path=str(train), target="y", target_kind="classification", device=CPU, seed=0)


def test_cli_trains_linreg_on_a_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", ["a", "b", "y"], regression_rows(200))
    run_dir = tmp_path / "run"
    proc = run_ptlab("train", "task=linreg", "data=csv", f"data.train_path={path}", "data.target=y", *TINY,
                     f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = read_metrics(run_dir)
    assert "test/mse" in metrics and metrics["step"] == 3


def test_cli_reports_a_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", ["a", "b", "y"], regression_rows(20))
    proc = run_ptlab("train", "task=linreg", "data=csv", f"data.train_path={path}", "data.target=price", *TINY,
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ptlab: error:")]
    assert len(errors) == 1 and errors[0].startswith("ptlab: error: data.target: column 'price'")
    assert "a, b, y" in errors[0] and "Traceback" not in proc.stderr


# --- regression metrics in the units of the target -------------------------------------------

def price_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """(x1, x2, price): a price in the hundreds of thousands, noise of ±20,000."""
    x1, x2 = rng.normal(0, 1, n), rng.normal(5, 2, n)
    return np.column_stack([x1, x2, 1000 * (200 + 30 * x1 - 10 * x2 + rng.normal(0, 20, n))])


def test_regression_metrics_are_in_the_units_of_the_target(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(1)
    parts = {name: price_rows(rng, n) for name, n in (("train", 200), ("val", 40), ("test", 60))}
    paths = {name: write_csv(tmp_path / f"{name}.csv", ["x1", "x2", "price"], rows.tolist())
             for name, rows in parts.items()}
    run_dir = tmp_path / "run"
    metrics = train_here("task=linreg", "data=csv", *(f"data.{name}_path={path}" for name, path in paths.items()),
                         "data.target=price", run_dir=run_dir)

    # By hand: standardize with the training rows, apply best.pt's w and b, undo the target's standardization.
    train_x, train_y = parts["train"][:, :2], parts["train"][:, 2]
    mean, std, mu, sigma = train_x.mean(0), train_x.std(0), train_y.mean(), train_y.std()
    payload = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert payload["data_info"]["target_mean"] == pytest.approx(mu) and payload["data_info"]["target_std"] == pytest.approx(sigma)
    w, b = payload["model"]["linear.weight"].double().numpy()[0], payload["model"]["linear.bias"].double().item()
    for name in ("val", "test"):  # val/*: the best validation, whose weights best.pt holds (checkpoint.monitor=val/mse)
        x, y = parts[name][:, :2], parts[name][:, 2]
        y_hat = ((x - mean) / std @ w + b) * sigma + mu
        assert metrics[f"{name}/mse"] == pytest.approx(mean_squared_error(y, y_hat), rel=1e-4)
        assert metrics[f"{name}/rmse"] == pytest.approx(mean_squared_error(y, y_hat) ** 0.5, rel=1e-4)
        assert metrics[f"{name}/mae"] == pytest.approx(mean_absolute_error(y, y_hat), rel=1e-4)
        assert metrics[f"{name}/r2"] == pytest.approx(r2_score(y, y_hat), abs=1e-4)
        assert metrics[f"{name}/loss"] == pytest.approx(0.5 * mean_squared_error(y, y_hat) / sigma**2, rel=1e-4)
    assert 1e8 < metrics["test/mse"] < 1e9  # price²: the noise alone is 20,000² = 4e8

    x, y = parts["test"][:, :2], parts["test"][:, 2]
    y_lstsq = LinearRegression().fit(train_x, train_y).predict(x)
    assert metrics["test/mse_lstsq"] == pytest.approx(mean_squared_error(y, y_lstsq), rel=1e-4)
    assert metrics["test/rmse_lstsq"] == pytest.approx(mean_squared_error(y, y_lstsq) ** 0.5, rel=1e-4)
    assert metrics["test/mae_lstsq"] == pytest.approx(mean_absolute_error(y, y_lstsq), rel=1e-4)
    assert metrics["test/r2_lstsq"] == pytest.approx(r2_score(y, y_lstsq), abs=1e-4)
    assert metrics["test/mse_vs_lstsq"] == pytest.approx(metrics["test/mse"] / metrics["test/mse_lstsq"])

    proc = run_ptlab("eval", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads((run_dir / "eval_test.json").read_text())
    for name in ("loss", "mse", "rmse", "mae", "r2"):
        assert evaluated[f"test/{name}"] == pytest.approx(metrics[f"test/{name}"], rel=1e-6)


def test_r2_of_a_single_row_is_nan_not_an_error() -> None:
    from ptlab.objectives.metrics import r2

    metric = r2()
    metric.update(torch.tensor([1.0]), torch.tensor([2.0]))
    assert metric.compute().isnan()


# --- files that are not UTF-8 CSV, run folders that cannot be made ---------------------------

def write_bad_file(kind: str, path: Path) -> str:
    """Make ``path`` a wrong kind of input; return the part of the message that must name it."""
    if kind == "folder":
        path.mkdir()
        return "is a folder; give the path of a UTF-8 CSV file"
    if kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4)
        return "is a binary file (it holds NUL bytes), not text; give a UTF-8 CSV file"
    path.write_bytes("text,label,a,y\nhello,x,1,2\n".encode("utf-16"))
    return "is not UTF-8 text (it looks like UTF-16); re-save it as UTF-8"


BAD_FILES = ["folder", "binary", "utf16"]


def assert_refused(proc, expected: str, folder: Path, before: set[str]) -> None:
    """Exit 2, one ``ptlab: error:`` line that says ``expected``, no traceback, nothing new in ``folder``."""
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ptlab: error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert {p.name for p in folder.iterdir()} == before


@pytest.mark.parametrize("kind", BAD_FILES)
def test_cli_refuses_a_csv_that_is_not_utf8_text(tmp_path: Path, kind: str) -> None:
    expected = "ptlab: error: data.train_path: table.csv " + write_bad_file(kind, tmp_path / "table.csv")
    proc = run_ptlab("train", "task=linreg", "data=csv", "data.train_path=table.csv", "data.target=y", *TINY,
                     "hydra.run.dir=run", cwd=tmp_path)
    assert_refused(proc, expected, tmp_path, {"table.csv"})


def test_text_files_in_other_encodings_are_named(tmp_path: Path) -> None:
    from ptlab.data.files import read_text_file

    cases = {
        "le.txt": ("a,b\n1,2\n".encode("utf-16-le"), "(it looks like UTF-16); re-save it as UTF-8"),
        "be.txt": ("a,b\n1,2\n".encode("utf-16-be"), "(it looks like UTF-16); re-save it as UTF-8"),
        "32.txt": ("a,b\n".encode("utf-32"), "(it looks like UTF-32); re-save it as UTF-8"),
        "latin.txt": ("a,b\ncafé,2\n".encode("latin-1"), "(byte 0xe9 at offset 7 is not UTF-8); re-save it as UTF-8"),
    }
    for name, (raw, expected) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ConfigError, match=rf"^data\.path: .*{name} is not UTF-8 text {re.escape(expected)}$"):
            read_text_file(tmp_path / name, "data.path")
    (tmp_path / "crlf.txt").write_bytes("\ufeffa,b\r\nc\rd".encode("utf-8"))
    assert read_text_file(tmp_path / "crlf.txt", "data.path") == "a,b\nc\nd"
    assert read_text_file(tmp_path / "crlf.txt", "data.path", universal_newlines=False) == "a,b\r\nc\rd"


@pytest.mark.parametrize("run_dir,expected", [
    ("/proc/ptlab/run", "hydra.run.dir: cannot make /proc/ptlab/run: making a folder in /proc fails"),
    ("taken", "hydra.run.dir: {tmp}/taken is a file, not a folder; choose another hydra.run.dir=DIR"),
    ("taken/run", "hydra.run.dir: {tmp}/taken is a file, not a folder, so taken/run cannot be made"),
    (None, "hydra.run.dir: {tmp}/outputs is a file, not a folder, so outputs/linreg/"),  # the default folder
])
def test_cli_refuses_a_run_folder_that_cannot_be_made(tmp_path: Path, run_dir: str | None, expected: str) -> None:
    (tmp_path / "taken").write_text("a file\n")
    (tmp_path / "outputs").write_text("a file\n")
    folder = [] if run_dir is None else [f"hydra.run.dir={run_dir}"]
    proc = run_ptlab("train", "task=linreg", *TINY, *folder, cwd=tmp_path)
    assert_refused(proc, "ptlab: error: " + expected.format(tmp=tmp_path), tmp_path, {"taken", "outputs"})


def test_cli_refuses_a_sweep_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file\n")
    proc = run_ptlab("train", "-m", "task=linreg", "seed=0,1", *TINY, "hydra.sweep.dir=taken/sweep", cwd=tmp_path)
    assert_refused(proc, f"ptlab: error: hydra.sweep.dir: {tmp_path}/taken is a file, not a folder, so taken/sweep "
                   "cannot be made", tmp_path, {"taken"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_refuses_a_run_folder_in_a_read_only_folder(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir(mode=0o555)
    proc = run_ptlab("train", "task=linreg", *TINY, "hydra.run.dir=locked/run", cwd=tmp_path)
    assert_refused(proc, "ptlab: error: hydra.run.dir: cannot make locked/run: making a folder in "
                   f"{tmp_path}/locked fails (Permission denied)", tmp_path, {"locked"})
    assert not any((tmp_path / "locked").iterdir())
