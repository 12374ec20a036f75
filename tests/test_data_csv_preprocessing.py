"""CSV tables with categorical columns and missing cells (data.categorical, data.missing): fitted on the training
rows only, kept in Data.state, refused in one line naming the key; the CLI on a penguins-like file."""

from __future__ import annotations

import csv
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import read_metrics, run_ptlab
from ptlab.data.loaders import Data
from ptlab.data.table_preprocessing import MISSING
from ptlab.data.tabular import csv_table
from ptlab.errors import ConfigError

torch.set_num_threads(1)

CPU = torch.device("cpu")
HEADER = ["species", "island", "bill_length_mm", "body_mass_g", "sex"]
ISLANDS = {"Adelie": ["Torgersen", "Dream", "Biscoe"], "Chinstrap": ["Dream"], "Gentoo": ["Biscoe"]}


def penguins(n: int, seed: int = 0) -> list[list]:
    """Rows like the Palmer penguins': a string target, two string columns, two numeric ones."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        species = list(ISLANDS)[i % 3]
        length, mass = {"Adelie": (38.8, 3700), "Chinstrap": (48.8, 3733), "Gentoo": (47.5, 5076)}[species]
        rows.append([species, ISLANDS[species][i % len(ISLANDS[species])], round(rng.gauss(length, 2.5), 1),
                     round(rng.gauss(mass, 400)), ["male", "female"][i % 2]])
    return rows


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def build(train: str, **options) -> Data:
    return csv_table(train_path=train, target="species", target_kind="classification", device=CPU, seed=0, **options)


def split(data: Data, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return getattr(data, name).tensors


def columns(data: Data, name: str, prefix: str) -> torch.Tensor:
    """The features of split ``name`` whose names start with ``prefix`` (a column's one-hot block)."""
    keep = [i for i, feature in enumerate(data.state["features"]) if feature.startswith(prefix)]
    return split(data, name)[0][:, keep]


def test_string_columns_are_one_hot_and_the_state_says_how(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    rows = penguins(60)
    train, test = write_csv(tmp_path / "train.csv", rows[:45]), write_csv(tmp_path / "test.csv", rows[45:])
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(train, test_path=test)
    features = ["island=Biscoe", "island=Dream", "island=Torgersen", "bill_length_mm", "body_mass_g",
                "sex=female", "sex=male"]
    assert data.state == {"features": features, "categories": {"island": ["Biscoe", "Dream", "Torgersen"],
                                                               "sex": ["female", "male"]},
                          "fill_values": {}, "categorical": "onehot", "missing": "error"}
    assert data.info == {"in_features": 7, "num_classes": 3}
    x = split(data, "test")[0]
    onehot = [0, 1, 2, 5, 6]
    assert set(x[:, onehot].unique().tolist()) == {0.0, 1.0}  # indicators stay 0/1, unstandardized
    assert x[:, [0, 1, 2]].sum(1).tolist() == [1.0] * 15 and x[:, [5, 6]].sum(1).tolist() == [1.0] * 15
    expected = [[float(r[1] == island) for island in ("Biscoe", "Dream", "Torgersen")] for r in rows[45:]]
    assert x[:, [0, 1, 2]].tolist() == expected
    train_x = split(data, "train")[0]
    assert torch.allclose(train_x[:, [3, 4]].mean(0), torch.zeros(2), atol=1e-5)  # numbers are standardized
    assert torch.allclose(train_x[:, [3, 4]].std(0, unbiased=False), torch.ones(2), atol=1e-4)
    assert caplog.messages.count("data: one-hot encoded island (3 categories), sex (2)") == 1


def test_categories_are_fitted_on_the_training_rows_only(tmp_path: Path) -> None:
    rows = penguins(60)
    rows[7][1], rows[7][2] = "Rare", 99.0  # the one Rare penguin has the longest bill: found in any split
    train = write_csv(tmp_path / "train.csv", rows)
    seen = set()
    for split_seed in range(12):
        data = build(train, split_seed=split_seed)
        lengths = {name: columns(data, name, "bill_length_mm")[:, 0] for name in ("train", "val", "test")}
        longest = torch.cat(list(lengths.values())).max()
        where = next(name for name, length in lengths.items() if (length == longest).any())
        seen.add(where)
        assert ("Rare" in data.state["categories"]["island"]) == (where == "train")
        if where != "train":  # carved into val or test: an unseen category, all-zero
            assert columns(data, where, "island=")[lengths[where] == longest].tolist() == [[0.0, 0.0, 0.0]]
    assert "train" in seen and seen & {"val", "test"}


def test_a_category_only_in_a_later_file_is_all_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = penguins(45)
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", [["Adelie", "Torgersen", 39.1, 3750, "male"],
                                             ["Adelie", "Deception", 38.0, 3600, "female"]])
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(train, test_path=test)
    assert columns(data, "test", "island=").tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert data.state["categories"]["island"] == ["Biscoe", "Dream", "Torgersen"]
    assert "encoded 1 value of island unseen in the training rows as all-zero" in caplog.text


def test_numeric_categories_sort_as_numbers(tmp_path: Path) -> None:
    rows = [[species, grade, length, mass, sex] for (species, _, length, mass, sex), grade
            in zip(penguins(45), ["10", "2", "A"] * 15)]
    data = build(write_csv(tmp_path / "train.csv", rows))
    assert data.state["categories"]["island"] == ["2", "10", "A"]


def test_a_numeric_column_with_a_stray_word_is_encoded_with_a_warning(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    rows = penguins(45)
    rows[3][2] = "?"
    path = write_csv(tmp_path / "train.csv", rows)
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(path)
    assert "bill_length_mm=?" in data.state["features"]
    warning = (f"data: column 'bill_length_mm' is one-hot encoded because line 5 of {path} holds '?', though 44 of "
               "its 45 values are numbers; if it is numeric, make the other cells numbers or blank (missing)")
    assert warning in caplog.messages


@pytest.mark.parametrize("cell", MISSING + ("  ",))
def test_every_missing_spelling_is_refused_by_default(tmp_path: Path, cell: str) -> None:
    rows = penguins(45)
    rows[3][3] = cell
    path = write_csv(tmp_path / "train.csv", rows)
    shown = "a blank cell" if not cell.strip() else repr(cell)
    with pytest.raises(ConfigError, match=rf"^data\.missing: column 'body_mass_g' of {path} has no value at line 5 "
                                          rf"\({shown}\); set data\.missing=drop to drop the rows with a missing "
                                          r"value, or data\.missing=mean to fill numeric cells with the training "
                                          r"rows' mean \(a missing category is all-zero\)$"):
        build(path)


def test_a_missing_value_in_a_test_file_names_that_file(tmp_path: Path) -> None:
    rows = penguins(60)
    rows[50][1] = ""
    train, test = write_csv(tmp_path / "train.csv", rows[:45]), write_csv(tmp_path / "test.csv", rows[45:])
    with pytest.raises(ConfigError, match=rf"^data\.missing: column 'island' of {test} has no value at line 7 "):
        build(train, test_path=test)


def test_a_missing_target_is_refused_by_default(tmp_path: Path) -> None:
    rows = penguins(45)
    rows[9][0] = "NA"
    path = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(ConfigError, match=rf"^data\.missing: the target 'species' of {path} has no value at line 11 "
                                          r"\('NA'\), and a target cannot be filled in; set data\.missing=drop to "
                                          r"drop the rows without one \(data\.missing=mean drops them too\), or fill "
                                          r"it in$"):
        build(path)


def test_categorical_error_names_the_column_the_line_and_both_options(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", penguins(45))
    with pytest.raises(ConfigError, match=rf"^data\.categorical: column 'island' of {path} is not numeric \(line 2: "
                                          r"'Torgersen'\); set data\.categorical=onehot to one-hot encode it, or drop "
                                          r"the column$"):
        build(path, categorical="error")
    numeric = [[r[0], r[2], r[3]] for r in penguins(45)]
    train = write_csv(tmp_path / "numeric.csv", numeric, ["species", "bill_length_mm", "body_mass_g"])
    test = write_csv(tmp_path / "test.csv", [["Adelie", 39.0, 3700], ["Gentoo", "long", 5000]],
                     ["species", "bill_length_mm", "body_mass_g"])
    with pytest.raises(ConfigError, match=rf"^data\.categorical: column 'bill_length_mm' of {test} is not numeric "
                                          r"\(line 3: 'long'\)"):
        build(train, test_path=test, categorical="error")
    with pytest.raises(ConfigError, match=rf"^data\.test_path: column 'bill_length_mm' of {test} is numeric in the "
                                          r"training file, but line 3 holds 'long'; make it a number, or blank for a "
                                          r"missing value$"):
        build(train, test_path=test)  # onehot: the training file decides which columns are categorical


def test_infinite_numbers_are_still_refused(tmp_path: Path) -> None:
    rows = penguins(45)
    rows[0][2] = "inf"
    path = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(ConfigError, match=rf"^data\.train_path: column 'bill_length_mm' of {path} holds nan or inf "
                                          r"\(line 2: 'inf'\); fill in or drop those rows$"):
        build(path, missing="mean")


def test_drop_drops_rows_with_a_missing_value_or_target(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = penguins(60)
    rows[2][2], rows[5][4], rows[8][1], rows[11][0] = "", "NA", "N/A", "null"  # four rows, one without a target
    rows[20][4] = "   "
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(write_csv(tmp_path / "train.csv", rows), missing="drop")
    assert sum(len(split(data, name)[0]) for name in ("train", "val", "test")) == 55
    assert data.state["categories"] == {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
    assert data.state["fill_values"] == {} and data.state["missing"] == "drop"
    assert caplog.messages.count("data: one-hot encoded island (3 categories), sex (2); dropped 4 rows with a "
                                 "missing value; dropped 1 row without a target") == 1


def test_drop_that_leaves_no_row_is_refused(tmp_path: Path) -> None:
    rows = penguins(45)
    for row in rows:
        row[3] = ""
    path = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(ConfigError, match=rf"^data\.missing: every row of {path} has a missing value, so "
                                          r"data\.missing=drop leaves none; fill in the cells, or set "
                                          r"data\.missing=mean$"):
        build(path, missing="drop")


def test_mean_fills_with_the_training_rows_mean(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = penguins(75)
    rows[1][2] = rows[4][2] = "NaN"  # training rows
    rows[50][2], rows[50][4] = "", "None"  # a val row: the training mean, an all-zero sex
    rows[60][3] = "NA"  # a test row
    rows[30][0] = ""  # no target: dropped
    train, val, test = (write_csv(tmp_path / f"{name}.csv", part)
                        for name, part in (("train", rows[:45]), ("val", rows[45:60]), ("test", rows[60:])))
    with caplog.at_level(logging.INFO, logger="ptlab"):
        data = build(train, val_path=val, test_path=test, missing="mean")
    length_mean = np.mean([r[2] for r in rows[:45] if r[0] and r[2] != "NaN"])
    mass_mean = np.mean([r[3] for r in rows[:45] if r[0]])
    assert data.state["fill_values"] == {"bill_length_mm": pytest.approx(length_mean),
                                                     "body_mass_g": pytest.approx(mass_mean)}
    assert data.state["missing"] == "mean" and len(split(data, "train")[0]) == 44
    filled = split(data, "val")[0][5]  # line 7 of val.csv: filled with the mean, which standardizes to 0
    assert abs(filled[3].item()) < 1e-5 and filled[[5, 6]].tolist() == [0.0, 0.0]
    assert abs(split(data, "test")[0][0, 4].item()) < 1e-5
    assert caplog.messages.count(
        "data: one-hot encoded island (3 categories), sex (2); filled 3 missing values of bill_length_mm, 1 of "
        "body_mass_g with the training mean; encoded 1 missing value of sex as all-zero; dropped 1 row without a "
        "target") == 1


def test_mean_needs_a_value_in_the_training_rows(tmp_path: Path) -> None:
    rows = penguins(60)
    for row in rows[:45]:
        row[2] = ""
    train, test = write_csv(tmp_path / "train.csv", rows[:45]), write_csv(tmp_path / "test.csv", rows[45:])
    with pytest.raises(ConfigError, match=rf"^data\.missing: column 'bill_length_mm' has no value in the training "
                                          rf"rows of {train}, so there is no mean to fill it in with; drop the "
                                          r"column$"):
        build(train, test_path=test, val_fraction=0.2, missing="mean")


def penguins_file(folder: Path) -> str:
    rows = penguins(90)
    rows[4][1], rows[7][4], rows[12][2] = "", "NA", ""
    return write_csv(folder / "penguins.csv", rows)


def test_cli_refuses_a_missing_value_by_default(tmp_path: Path) -> None:
    path = penguins_file(tmp_path)
    proc = run_ptlab("train", "task=logreg", "data=csv", "data.target=species", f"data.train_path={path}",
                     "trainer.max_epochs=2", "trainer.progress=plain", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ptlab: error:")]
    assert errors == [f"ptlab: error: data.missing: column 'island' of {path} has no value at line 6 (a blank "
                      "cell); set data.missing=drop to drop the rows with a missing value, or data.missing=mean to "
                      "fill numeric cells with the training rows' mean (a missing category is all-zero)"]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["penguins.csv"]  # no run folder left behind


def test_cli_trains_on_penguins_and_eval_checks_the_encoding(tmp_path: Path) -> None:
    from ptlab.api import rebuild

    path = penguins_file(tmp_path)
    run_dir = tmp_path / "run"
    proc = run_ptlab("train", "task=logreg", "data=csv", "data.target=species", f"data.train_path={path}",
                     "data.missing=mean", "trainer.max_epochs=2", "trainer.progress=plain",
                     f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test/acc" in read_metrics(run_dir) and "test/acc" in proc.stdout
    assert "data: one-hot encoded island (3 categories), sex (2); filled 1 missing value of bill_length_mm with " \
           "the training mean; encoded 1 missing value of island, 1 of sex as all-zero" in proc.stdout + proc.stderr
    ckpt = run_dir / "checkpoints" / "best.pt"
    payload = torch.load(ckpt, weights_only=True)
    assert payload["data_state"]["categories"] == {"island": ["Biscoe", "Dream", "Torgersen"],
                                                   "sex": ["female", "male"]}
    assert payload["data_info"]["in_features"] == 7

    _, run = rebuild(ckpt)  # what eval does: the saved config rebuilds the same encoding
    assert run.data.state == payload["data_state"]
    with pytest.raises(ConfigError, match=r"^data\.missing=drop: the data no longer matches the one the checkpoint "
                                          r"was trained on"):
        rebuild(ckpt, ["data.missing=drop"])
