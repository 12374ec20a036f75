"""The data package's single homes: class-label order, finding and fetching a data set's files, the kind check."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ptlab.data import downloads
from ptlab.data.downloads import dataset_folder, fetch, require
from ptlab.data.tabular import csv_table, diabetes
from ptlab.data.text import csv_text, python_docs
from ptlab.data.vision import digits
from ptlab.errors import ConfigError

CPU = torch.device("cpu")


def write_rows(path: Path, header: list[str], rows: list[list]) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.mark.parametrize("labels, order", [
    (["b", "10", "a", "2"], ["2", "10", "a", "b"]),  # numbers by value ("2" < "10"), then text
    (["inf", "1e3", "b", "1."], ["1.", "1e3", "b", "inf"]),  # any finite float is a number; "inf" is text ("nan" is missing)
])
def test_text_and_tabular_classes_follow_one_order(tmp_path: Path, labels: list[str], order: list[str]) -> None:
    texts = write_rows(tmp_path / "texts.csv", ["text", "label"],
                       [[f"words of class {label} number {i}", label] for i in range(10) for label in labels])
    data = csv_text(train_path=texts, text="text", label="label", batch_size=8, vocab_size=100,
                    target_kind="text_classification", device=CPU, seed=0)
    assert data.info["classes"] == order

    train = write_rows(tmp_path / "train.csv", ["x", "label"], [[i, label] for i in range(10) for label in labels])
    test = write_rows(tmp_path / "test.csv", ["x", "label"], [[i, label] for i, label in enumerate(order)])
    table = csv_table(train_path=train, test_path=test, target="label", target_kind="classification", device=CPU,
                      seed=0)
    assert table.test.tensors[1].tolist() == [0, 1, 2, 3]


def test_require_names_each_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a").touch()
    (tmp_path / "b.gz").touch()
    require(tmp_path, ["a"], "demo")
    with pytest.raises(ConfigError, match=rf"^data\.root: demo files b, c are not in {tmp_path}; pass "
                                          r"data\.download=true to fetch them, or data\.root=DIR where they are$"):
        require(tmp_path, ["a", "b", "c"], "demo")
    with pytest.raises(ConfigError, match=r"^data\.root: demo files c are not in"):
        require(tmp_path, ["a", "b", "c"], "demo", gz_ok=True)  # b.gz stands in for b


def test_dataset_folder_fetches_only_when_asked_and_files_are_missing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_fetch(sources, root, data_name) -> None:
        calls.append((list(sources), root, data_name))
        (Path(root) / "set").mkdir(exist_ok=True)
        (Path(root) / "set" / "train.csv").touch()

    monkeypatch.setattr(downloads, "fetch", fake_fetch)
    with pytest.raises(ConfigError, match="demo files train.csv are not in"):
        dataset_folder(str(tmp_path), "set", ["train.csv"], "demo", False, ["https://x/a.tgz"])
    assert calls == []
    folder = dataset_folder(str(tmp_path), "set", ["train.csv"], "demo", True, ["https://x/a.tgz"])
    assert folder == tmp_path / "set" and calls == [(["https://x/a.tgz"], str(tmp_path), "demo")]
    dataset_folder(str(tmp_path), "set", ["train.csv"], "demo", True, ["https://x/a.tgz"])
    assert len(calls) == 1  # present: nothing fetched again


def test_fetch_tries_each_source_in_turn_and_names_every_failure(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets
    import torchvision.datasets.utils

    tried = []

    def archive(url: str, into: str) -> None:
        tried.append((url, into))
        if "down" in url:
            raise OSError("host unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", archive)
    fetch(["https://down/a.zip", "https://up/a.zip"], str(tmp_path), "demo")
    assert tried == [("https://down/a.zip", str(tmp_path)), ("https://up/a.zip", str(tmp_path))]
    with pytest.raises(ConfigError, match=r"^data\.download: could not download demo \(https://down/1\.zip: host "
                                          r"unreachable; https://down/2\.zip: host unreachable\); put the files "
                                          r"under data\.root yourself and pass data\.download=false$"):
        fetch(["https://down/1.zip", "https://down/2.zip"], str(tmp_path), "demo")

    splits = []

    class FakeSet:  # a torchvision data set class: its constructor downloads one split
        def __init__(self, root: str, train: bool, download: bool) -> None:
            splits.append((root, train, download))

    monkeypatch.setattr(torchvision.datasets, "FakeSet", FakeSet, raising=False)
    fetch(["FakeSet"], str(tmp_path), "demo")
    assert splits == [(str(tmp_path), True, True), (str(tmp_path), False, True)]


@pytest.mark.parametrize("build, kind, message", [
    (diabetes, "classification",
     "data=diabetes holds a regression target but the objective reads classification data; use objective=regression"),
    (digits, "regression", "data=digits holds labelled images but the objective reads regression data; "
                           "use objective=classification or task=gan"),
    (python_docs, "text_classification", "data=python_docs holds text for language model but the objective reads "
                                         "text_classification data; use objective=text (task=rnn or task=transformer)"),
])
def test_data_of_another_kind_is_refused_in_one_wording(build, kind: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build(target_kind=kind, device=CPU, seed=0)
    assert str(refused.value) == message
