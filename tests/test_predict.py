"""``ptlab predict``: a tabular checkpoint's predictions for new CSV rows, through the training preprocessing, and a
text classifier's for new texts, through the training encoding; its refusals in one line naming the key."""

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
                                          r"predict reads tabular checkpoints \(data=csv\) and text classifiers "
                                          r"\(data=imdb, ag_news, csv_text\)$"):
        predict(ckpt, tmp_path / "rows.csv")


def test_cli_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "ckpt=best.pt", "out=p.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptlab: error: input: required; e.g. ptlab predict ckpt=") and err.count("\n") == 1


# --- text classifiers ----------------------------------------------------------------------------------------------

TOPICS = {"sport": "ball", "art": "paint", "food": "bread"}  # a sentence's topic is the keyword it holds
CLASSES = ["art", "food", "sport"]  # the training labels in id order
MAX_LENGTH = 8  # <bos> and at most 7 tokens: the longer sentences are cut


def sentences(n: int, seed: int) -> list[list[str]]:
    """[sentence, topic] rows: 3 to 12 random words, one of the first six the topic's keyword."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        words = [f"w{rng.randint(1, 15)}" for _ in range(rng.randint(3, 12))]
        words[rng.randrange(min(len(words), 6))] = TOPICS[topic]
        rows.append([" ".join(words), topic])
    return rows


@pytest.fixture(scope="module")
def text_classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a small LSTM checkpoint trained on data=csv_text with a given test file, that test file)."""
    folder = tmp_path_factory.mktemp("text_classifier")
    header = ["sentence", "topic"]
    train_file = write_csv(folder / "train.csv", sentences(300, 0), header)
    test_file = write_csv(folder / "test.csv", sentences(30, 1), header)
    return train(folder / "run", "task=rnn", "data=csv_text", f"data.train_path={train_file}",
                 f"data.test_path={test_file}", "data.text=sentence", "data.label=topic",
                 f"data.max_length={MAX_LENGTH}", "data.batch_size=16", "model.embedding_dim=16",
                 "model.hidden_size=16", "model.num_layers=1", "trainer.max_steps=60", "optimizer.lr=0.01"), test_file


def model_probabilities(ckpt: Path, texts: list[str], cut: bool = True) -> torch.Tensor:
    """The softmax of the checkpoint's model on each text alone: ``<bos>``, then the saved tokenizer's ids of the text
    (with ``cut``, at most MAX_LENGTH − 1 of them)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(torch.load(ckpt, weights_only=True)["tokenizer"])
    model = rebuild(ckpt)[1].model.eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            ids = [tokenizer.token_to_id("<bos>"), *(ids[:MAX_LENGTH - 1] if cut else ids)]
            rows.append(torch.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])), -1)[0])
    return torch.stack(rows)


def probabilities(rows: list[list[str]]) -> torch.Tensor:
    return torch.tensor([[float(cell) for cell in row[-len(CLASSES):]] for row in rows])


def test_text_predictions_are_the_models_own_on_each_text_cut_as_in_training(
        text_classifier: tuple[Path, Path]) -> None:
    ckpt, test_file = text_classifier
    predictions = predict(ckpt, test_file)  # the texts of the training text column, data.text, by default
    assert predictions.header == ["sentence", "topic", "prediction", "p_art", "p_food", "p_sport"]
    assert [row[:2] for row in predictions.rows] == sentences(30, 1)  # copied through, in order
    texts = [text for text, _ in sentences(30, 1)]
    p = probabilities(predictions.rows)
    assert p.sum(1) == pytest.approx(torch.ones(len(texts)), abs=1e-6)
    assert p == pytest.approx(model_probabilities(ckpt, texts), abs=1e-6)
    assert not torch.allclose(p, model_probabilities(ckpt, texts, cut=False), atol=1e-3)  # so the cut is checked
    assert [row[2] for row in predictions.rows] == [CLASSES[k] for k in p.argmax(1).tolist()]
    accuracy = sum(row[2] == row[1] for row in predictions.rows) / len(texts)
    assert accuracy == pytest.approx(read_metrics(ckpt.parent.parent)["test/acc"])


def test_a_text_file_is_read_one_text_a_line_skipping_blank_lines(text_classifier: tuple[Path, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, _ = text_classifier
    lines = ["w3 paint w4", "", 'bread, "w1" w2', "   ", "w9 w2 ball"]
    (tmp_path / "new.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "predictions.csv"
    assert main(["predict", f"ckpt={ckpt}", f"input={tmp_path / 'new.txt'}", f"out={out}"]) == 0
    assert capsys.readouterr().out.endswith(f"3 predictions written to {out}\n")
    rows = read_csv(out)
    assert list(rows[0]) == ["text", "prediction", "p_art", "p_food", "p_sport"]
    texts = [line for line in lines if line.strip()]
    assert [row["text"] for row in rows] == texts
    p = probabilities([list(row.values()) for row in rows])
    assert p == pytest.approx(model_probabilities(ckpt, texts), abs=1e-6)
    assert [row["prediction"] for row in rows] == ["art", "food", "sport"]  # their keywords' topics


def test_the_text_column_and_refusals_of_text_input(text_classifier: tuple[Path, Path], classifier: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    ckpt, test_file = text_classifier
    bodies = [["1", "w1 ball"], ["2", "paint w2"]]
    reviews = write_csv(tmp_path / "reviews.csv", bodies, ["id", "body"])
    in_sentence = write_csv(tmp_path / "sentences.csv", [[body] for _, body in bodies], ["sentence"])
    assert predict(ckpt, reviews, column="body").rows == [[i, *row] for (i, _), row in
                                                          zip(bodies, predict(ckpt, in_sentence).rows)]
    refusals = {
        r"^input: .*reviews\.csv has no column 'sentence'; pass column=NAME with one of its columns: id, body$":
            dict(input=reviews),
        r"^column: .*reviews\.csv has no column 'text'; pass column=NAME with one of its columns: id, body$":
            dict(input=reviews, column="text"),
        r"^column: .*test\.txt is read as plain text, one text a line; column= is for a \.csv input$":
            dict(input=test_file.with_suffix(".txt"), column="sentence"),
        r"^input: .*blank\.txt holds no text \(every line is blank\); give one text a line$":
            dict(input=tmp_path / "blank.txt"),
        r"^input: .*empty\.csv has no data rows; give a CSV with a header row and at least one row$":
            dict(input=write_csv(tmp_path / "empty.csv", [], ["sentence"])),
        r"^input: cannot read .*missing\.txt \(No such file or directory\); give a text file you can read$":
            dict(input=tmp_path / "missing.txt"),
        r"^input: .*taken\.csv already has a column 'p_food', which ptlab predict writes; rename it$":
            dict(input=write_csv(tmp_path / "taken.csv", [["w1 ball", "0.5"]], ["sentence", "p_food"])),
    }
    (tmp_path / "blank.txt").write_text("\n \n\t\n")
    for message, arguments in refusals.items():
        with pytest.raises(ConfigError, match=message):
            predict(ckpt, **arguments)
    with pytest.raises(ConfigError, match=r"^column: is for text classifiers; a tabular checkpoint reads its feature "
                                          r"columns by their training names, so drop column=$"):
        predict(classifier[0], classifier[1], column="island")


def test_out_must_not_be_the_input(text_classifier: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, test_file = text_classifier
    before = test_file.read_text()
    same = test_file.parent / "." / test_file.name
    assert main(["predict", f"ckpt={ckpt}", f"input={test_file}", f"out={same}"]) == 2
    assert capsys.readouterr().err == (f"ptlab: error: out: {same} is the input file, which ptlab predict does not "
                                       f"overwrite; write to another file, e.g. out={test_file.parent}/"
                                       "test-predictions.csv\n")
    assert test_file.read_text() == before


def test_a_checkpoint_that_predates_kept_class_names_learns_them_from_its_data(text_classifier: tuple[Path, Path],
                                                                               tmp_path: Path) -> None:
    ckpt, test_file = text_classifier
    payload = torch.load(ckpt, weights_only=True)
    assert payload["data_state"] == {"classes": CLASSES}
    del payload["data_state"]["classes"]
    torch.save(payload, tmp_path / "old.pt")
    assert predict(tmp_path / "old.pt", test_file) == predict(ckpt, test_file)


def test_cli_points_a_language_model_to_generate(tmp_path: Path) -> None:
    (tmp_path / "book.txt").write_text("the cat sat on the mat. " * 40)
    lm = train(tmp_path / "lm", "task=rnn", "data=textfile", f"data.path={tmp_path / 'book.txt'}", "data.block_size=8",
               "model.embedding_dim=8", "model.hidden_size=8", "model.num_layers=1", "trainer.max_steps=1")
    (tmp_path / "new.txt").write_text("the cat\n")
    (tmp_path / "p.csv").write_text("an older file\n")
    proc = run_ptlab("predict", f"ckpt={lm}", "input=new.txt", "out=p.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"ptlab: error: ckpt: {lm} is a language model (task=rnn on data=textfile): it writes text "
                           f"rather than classifying it; use ptlab generate ckpt={lm} prompt=TEXT\n")
    assert (tmp_path / "p.csv").read_text() == "an older file\n"
