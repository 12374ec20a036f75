"""``ptlab predict``: a tabular checkpoint's predictions for new CSV rows, through the training preprocessing;
its refusals in one line naming the key."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import read_metrics, run_ptlab
from ptlab.api import rebuild
from ptlab.cli import main
from ptlab.errors import ConfigError
from ptlab.predict import predict

torch.set_num_threads(1)

HEADER = ["island", "bill_length_mm", "body_mass_g", "species"]
SPECIES = {"Adelie": ("Torgersen", 38.8, 3700), "Chinstrap": ("Dream", 48.8, 3733), "Gentoo": ("Biscoe", 47.5, 5076)}
FEATURES = ["island", "bill_length_mm", "body_mass_g"]


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def penguins(n: int, seed: int) -> list[list]:
    """Rows with a string column, two numeric ones and a string target (3 classes)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        species = list(SPECIES)[i % 3]
        island, length, mass = SPECIES[species]
        rows.append([island if rng.random() < 0.8 else "Dream", round(rng.gauss(length, 2.5), 1),
                     round(rng.gauss(mass, 300)), species])
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def train(run_dir: Path, *overrides: str) -> Path:
    ptlab.train(ptlab.compose([*overrides, "trainer.progress=plain", "trainer.max_epochs=5"]), run_dir=run_dir)
    return run_dir / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a logreg checkpoint trained on data=csv with a given test file, that test file)."""
    folder = tmp_path_factory.mktemp("classifier")
    train_file = write_csv(folder / "train.csv", penguins(120, 0))
    test_file = write_csv(folder / "test.csv", penguins(30, 1))
    return train(folder / "run", "task=logreg", "data=csv", "data.target=species", f"data.train_path={train_file}",
                 f"data.test_path={test_file}", "optimizer.lr=0.5"), test_file


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a linreg checkpoint on data=csv whose target is body_mass_g, in grams, with missing=mean; its test file)."""
    folder = tmp_path_factory.mktemp("regressor")
    header = ["island", "bill_length_mm", "species", "body_mass_g"]
    rows = [[row[0], row[1], row[3], row[2]] for row in penguins(120, 2)]
    rows[5][1] = ""  # filled with the training mean
    train_file = write_csv(folder / "train.csv", rows, header)
    test_file = write_csv(folder / "test.csv", [[row[0], row[1], row[3], row[2]] for row in penguins(20, 3)], header)
    return train(folder / "run", "task=linreg", "data=csv", "data.target=body_mass_g", "data.missing=mean",
                 f"data.train_path={train_file}", f"data.test_path={test_file}"), test_file


def test_cli_predicts_classes_and_probabilities_as_the_model_does(classifier: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    ckpt, test_file = classifier
    out = tmp_path / "predictions.csv"
    out.write_text("an older file\n")  # overwritten, atomically
    proc = run_ptlab("predict", f"ckpt={ckpt}", f"input={test_file}", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"30 predictions written to {out}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
    rows = read_csv(out)
    assert list(rows[0]) == [*HEADER, "prediction", "p_Adelie", "p_Chinstrap", "p_Gentoo"]
    assert [row["bill_length_mm"] for row in rows] == [str(row[1]) for row in penguins(30, 1)]  # in order
    for row in rows:
        assert sum(float(row[f"p_{s}"]) for s in SPECIES) == pytest.approx(1, abs=1e-6)
        assert row["prediction"] == max(SPECIES, key=lambda s: float(row[f"p_{s}"]))
    accuracy = sum(row["prediction"] == row["species"] for row in rows) / len(rows)
    assert accuracy == pytest.approx(read_metrics(ckpt.parent.parent)["test/acc"])

    _, run = rebuild(ckpt)  # the given test file is the test split, in file order
    x, _ = run.data.in_memory("test")
    with torch.no_grad():
        p = torch.softmax(run.model.eval()(x), -1)
    assert torch.tensor([[float(row[f"p_{s}"]) for s in SPECIES] for row in rows]) == pytest.approx(p, abs=1e-6)


def test_regression_predictions_are_in_the_targets_units(regressor: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, test_file = regressor
    predictions = predict(ckpt, test_file)
    assert predictions.header == ["island", "bill_length_mm", "species", "body_mass_g", "prediction"]
    _, run = rebuild(ckpt)
    x, _ = run.data.in_memory("test")
    with torch.no_grad():
        z = run.model.eval()(x).reshape(-1).double()
    grams = z * run.data.info["target_std"] + run.data.info["target_mean"]
    assert [float(row[-1]) for row in predictions.rows] == pytest.approx(grams.tolist(), rel=1e-6)
    assert 3000 < min(grams) and max(grams) < 6000

    rows = [["Biscoe", "", "Gentoo"], ["Atlantis", "47", "Gentoo"]]  # data.missing=mean fills; unseen: all-zero
    header = ["island", "bill_length_mm", "species"]  # no target column
    predicted = predict(ckpt, write_csv(tmp_path / "new.csv", rows, header)).rows
    assert all(3000 < float(row[-1]) < 6000 for row in predicted)


def test_refusals_name_the_key(classifier: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = classifier
    rows = penguins(3, 4)
    no_island = write_csv(tmp_path / "a.csv", [r[1:] for r in rows], HEADER[1:])
    with pytest.raises(ConfigError, match=r"^input: .*a\.csv has no column 'island'; the checkpoint expects the "
                                          r"columns island, bill_length_mm, body_mass_g$"):
        predict(ckpt, no_island)
    rows[1][1] = "NA"
    with pytest.raises(ConfigError, match=r"^input: column 'bill_length_mm' of .*b\.csv has no value at line 3 "
                                          r"\('NA'\); the checkpoint was trained with data\.missing=error"):
        predict(ckpt, write_csv(tmp_path / "b.csv", rows))
    rows[1][1] = "long"
    with pytest.raises(ConfigError, match=r"^input: column 'bill_length_mm' of .*c\.csv is numeric in the training "
                                          r"file, but line 3 holds 'long'"):
        predict(ckpt, write_csv(tmp_path / "c.csv", rows))
    with pytest.raises(ConfigError, match=r"^input: .*d\.csv already has a column 'p_Gentoo'"):
        predict(ckpt, write_csv(tmp_path / "d.csv", [[*penguins(1, 0)[0], "0.5"]], [*HEADER, "p_Gentoo"]))


def test_a_checkpoint_of_bundled_data_is_refused(tmp_path: Path) -> None:
    ckpt = train(tmp_path / "run", "task=linreg", "trainer.max_epochs=1")
    with pytest.raises(ConfigError, match=r"^ckpt: .* is a checkpoint of task=linreg with data=diabetes; ptlab "
                                          r"predict reads tabular checkpoints \(trained with data=csv\)$"):
        predict(ckpt, tmp_path / "rows.csv")


def test_cli_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "ckpt=best.pt", "out=p.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptlab: error: input: required; e.g. ptlab predict ckpt=") and err.count("\n") == 1
