"""Sentence-pair files for the translate task: Multi30k folders, Tatoeba .txt, summarization CSV."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ptlab.data.pair_files import carve_pairs, pairs_csv, parallel_text, tsv_pairs
from ptlab.errors import ConfigError

EN = ["A man in an orange hat.", "Two dogs play in the snow.", "A girl is reading a book."]
DE = ["Ein Mann mit einem orangefarbenen Hut.", "Zwei Hunde spielen im Schnee.", "Ein Mädchen liest ein Buch."]
CARVE = dict(val_fraction=0.1, test_fraction=0.2, split_seed=0)


def write_lines(path: Path, lines: list[str], ending: str = "\n") -> None:
    path.write_bytes("".join(line + ending for line in lines).encode("utf-8"))


def multi30k(root: Path, splits: dict[str, int], n_train: int = 20) -> Path:
    """A Multi30k-style folder: train.{en,de} with ``n_train`` numbered pairs, and other splits of 3 pairs."""
    root.mkdir(exist_ok=True)
    write_lines(root / "train.en", [f"en sentence {i}" for i in range(n_train)])
    write_lines(root / "train.de", [f"de Satz {i}" for i in range(n_train)])
    for name in splits:
        write_lines(root / f"{name}.en", [f"{name} {s}" for s in EN])
        write_lines(root / f"{name}.de", [f"{name} {s}" for s in DE])
    return root


def refused(match: str, call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError, match=match) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- parallel_text -----------------------------------------------------------------------------


def test_multi30k_folder_reads_train_val_test_files_and_uses_train_whole(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "multi30k", {"val": 3, "test": 3})
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert splits["train"] == [(f"en sentence {i}", f"de Satz {i}") for i in range(20)]
    assert splits["val"] == [(f"val {e}", f"val {d}") for e, d in zip(EN, DE)]
    assert splits["test"] == [(f"test {e}", f"test {d}") for e, d in zip(EN, DE)]
    reverse = parallel_text(str(root), "de", "en", **CARVE)  # the suffixes say which side is the source
    assert reverse["val"][0] == (f"val {DE[0]}", f"val {EN[0]}")


def test_multi30k_test_2016_flickr_and_valid_names_are_found(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "raw", {"valid": 3, "test_2016_flickr": 3})
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert splits["val"][0] == (f"valid {EN[0]}", f"valid {DE[0]}")
    assert splits["test"][2] == (f"test_2016_flickr {EN[2]}", f"test_2016_flickr {DE[2]}")
    assert len(splits["train"]) == 20  # nothing carved


def test_val_is_the_first_name_present_for_both_languages(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "d", {"dev": 3, "test2016": 3})
    write_lines(root / "val.en", ["an English val file without its German half"])
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert splits["val"][0][0] == f"dev {EN[0]}"
    assert splits["test"][0][0] == f"test2016 {EN[0]}"


def test_folder_with_only_train_carves_val_and_test_deterministically(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "only_train", {}, n_train=20)
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert {split: len(pairs) for split, pairs in splits.items()} == {"train": 14, "val": 2, "test": 4}
    sets = {split: set(pairs) for split, pairs in splits.items()}
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == {(f"en sentence {i}", f"de Satz {i}") for i in range(20)}
    assert parallel_text(str(root), "en", "de", **CARVE) == splits
    other = parallel_text(str(root), "en", "de", **(CARVE | {"split_seed": 1}))
    assert (set(other["val"]), set(other["test"])) != (sets["val"], sets["test"])


def test_given_val_file_leaves_only_test_to_carve(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3}, n_train=20)
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert len(splits["val"]) == 3 and splits["val"][0][0] == f"val {EN[0]}"
    assert (len(splits["train"]), len(splits["test"])) == (16, 4)  # 0.2 of 20; val_fraction unused


def test_misaligned_line_counts_name_both_files_and_counts(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3})
    write_lines(root / "val.de", DE[:2])
    message = refused("not line-aligned", parallel_text, str(root), "en", "de", **CARVE)
    assert message.startswith("data.root: ")
    assert str(root / "val.en") in message and "val.de" in message and "3 lines and 2" in message


def test_blank_lines_at_the_end_of_one_file_are_not_a_misalignment(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3, "test": 3})
    (root / "val.en").write_text("\n".join(f"val {s}" for s in EN) + "\n\n \n")
    (root / "test.de").write_text("\n".join(f"test {s}" for s in DE))  # no newline after the last line
    splits = parallel_text(str(root), "en", "de", **CARVE)
    assert (len(splits["val"]), len(splits["test"])) == (3, 3)
    (root / "val.en").write_text("\n".join(f"val {s}" for s in EN) + "\n\nextra\n")
    assert "5 lines and 3" in refused("not line-aligned", parallel_text, str(root), "en", "de", **CARVE)


def test_only_newline_ends_a_line_of_a_parallel_file(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3, "test": 3})
    write_lines(root / "val.en", ["A man\rin a hat.", "Two dogs\u2028play.", EN[2]])  # a stray CR, a U+2028
    assert [e for e, _ in parallel_text(str(root), "en", "de", **CARVE)["val"]] == \
        ["A man\rin a hat.", "Two dogs\u2028play.", EN[2]]


def test_wrong_suffix_message_lists_the_train_files_that_are_there(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3})
    message = refused("no train.eng", parallel_text, str(root), "eng", "de", **CARVE)
    assert message == f"data.source: no train.eng in {root}; the folder has train.de, train.en"
    assert refused("no train.ger", parallel_text, str(root), "en", "ger", **CARVE).startswith("data.target: ")


def test_gzipped_multi30k_files_get_told_to_decompress(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    for name in ("train.en.gz", "train.de.gz"):
        (root / name).write_bytes(b"\x1f\x8b")
    assert "gunzip" in refused("has train.de.gz, train.en.gz ", parallel_text, str(root), "en", "de", **CARVE)


def test_root_missing_or_a_file_names_what_the_folder_should_hold(tmp_path: Path) -> None:
    message = refused("does not exist", parallel_text, str(tmp_path / "nope"), "en", "de", **CARVE)
    assert message.startswith("data.root: ") and "train.en and train.de" in message
    (tmp_path / "file").write_text("x")
    assert "train.en and train.de" in refused("not a folder", parallel_text, str(tmp_path / "file"), "en", "de",
                                              **CARVE)
    (tmp_path / "empty").mkdir()
    assert "train.en and train.de" in refused("data.root: no train.en", parallel_text, str(tmp_path / "empty"),
                                              "en", "de", **CARVE)


def test_one_language_of_a_val_or_test_split_names_the_missing_file(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3})
    (root / "val.de").unlink()
    assert "no val.de" in refused("data.root: ", parallel_text, str(root), "en", "de", **CARVE)
    root = multi30k(tmp_path / "t", {"val": 3})
    write_lines(root / "test_2016_flickr.de", DE)
    assert "no test_2016_flickr.en" in refused("data.root: ", parallel_text, str(root), "en", "de", **CARVE)


def test_empty_side_pairs_are_dropped_with_one_warning(tmp_path: Path, caplog) -> None:
    root = multi30k(tmp_path / "m", {"val": 3, "test": 3})
    write_lines(root / "val.en", [EN[0], "   ", EN[2]], ending="\r\n")
    write_lines(root / "val.de", [DE[0], DE[1], ""])
    with caplog.at_level(logging.WARNING, logger="ptlab"):
        splits = parallel_text(str(root), "en", "de", **CARVE)
    assert splits["val"] == [(EN[0], DE[0])]  # "\r" stripped, both one-sided lines dropped
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 of 3 pairs" in warnings[0] and "val.en" in warnings[0]


def test_a_split_left_with_no_pairs_is_refused(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {"val": 3, "test": 3})
    write_lines(root / "test.de", ["", "", " "])
    assert "test.en" in refused("data.root: .*no pair", parallel_text, str(root), "en", "de", **CARVE)


def test_fractions_that_leave_no_training_pair_name_the_fraction(tmp_path: Path) -> None:
    root = multi30k(tmp_path / "m", {}, n_train=20)
    refused(r"data.val_fraction \+ data.test_fraction", parallel_text, str(root), "en", "de", 0.5, 0.5, 0)
    tiny = multi30k(tmp_path / "tiny", {}, n_train=1)
    refused("data.test_fraction: ", parallel_text, str(tiny), "en", "de", **CARVE)
    two = multi30k(tmp_path / "two", {}, n_train=2)
    refused("data.val_fraction: ", parallel_text, str(two), "en", "de", **CARVE)


# --- tsv_pairs ---------------------------------------------------------------------------------

TATOEBA = ("Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)",
           "Hi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM) & #509819 (Aiji)",
           "Run!\tCours !\tCC-BY 2.0 (France) Attribution: tatoeba.org #906328 (papabear) & #906331 (sacredceltic)",
           "Wait!\tAttendez !\tCC-BY 2.0 (France) Attribution: tatoeba.org #1744314 (belgavox) & #3054447 "
           "(sacredceltic)")


def test_tatoeba_txt_with_attribution_windows_line_endings_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "fra.txt"
    lines = [*TATOEBA[:3], "Hello!\tBonjour !"]  # the last without attribution: its "\r" ends the target
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n\r\n")
    (tmp_path / "val.txt").write_text(TATOEBA[3] + "\n")
    splits = tsv_pairs(str(path), str(tmp_path / "val.txt"), str(path), **CARVE)
    assert splits["train"] == [("Go.", "Va !"), ("Hi.", "Salut !"), ("Run!", "Cours !"), ("Hello!", "Bonjour !")]
    assert splits["val"] == [("Wait!", "Attendez !")]
    assert splits["test"] == splits["train"]


def test_tsv_without_val_and_test_files_carves_them(tmp_path: Path) -> None:
    path = tmp_path / "deu.txt"
    write_lines(path, [f"Sentence {i}.\tSatz {i}." for i in range(20)])
    splits = tsv_pairs(str(path), None, None, **CARVE)
    assert {split: len(pairs) for split, pairs in splits.items()} == {"train": 14, "val": 2, "test": 4}
    assert splits == tsv_pairs(str(path), None, None, **CARVE)


def test_tsv_line_without_a_tab_names_the_key_file_and_line_number(tmp_path: Path) -> None:
    path = tmp_path / "fra.txt"
    path.write_text(f"{TATOEBA[0]}\n\n{TATOEBA[1]}\nJust one column here\n")
    message = refused("line 4 ", tsv_pairs, str(path), None, None, **CARVE)
    assert message.startswith(f"data.train_path: {path} line 4 ") and "source<TAB>target" in message
    good = tmp_path / "good.txt"
    good.write_text(TATOEBA[0] + "\n")
    assert refused("line 4 ", tsv_pairs, str(good), None, str(path), **CARVE).startswith("data.test_path: ")


def test_tsv_empty_side_is_dropped_and_an_empty_file_refused(tmp_path: Path, caplog) -> None:
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\n\tSalut !\nRun!\t \n")
    with caplog.at_level(logging.WARNING, logger="ptlab"):
        splits = tsv_pairs(str(path), str(path), str(path), **CARVE)
    assert splits["train"] == [("Go.", "Va !")]
    assert any("2 of 3 pairs" in r.getMessage() for r in caplog.records)
    (tmp_path / "empty.txt").write_text("\n\n")
    refused("data.val_path: .*empty", tsv_pairs, str(path), str(tmp_path / "empty.txt"), None, **CARVE)


def test_tsv_decoding_goes_through_read_text_file(tmp_path: Path) -> None:
    path = tmp_path / "fra.txt"
    path.write_bytes("Go.\tVa !\n".encode("utf-16"))
    refused("data.train_path: .*not UTF-8", tsv_pairs, str(path), None, None, **CARVE)
    refused("data.train_path: .*is a folder", tsv_pairs, str(tmp_path), None, None, **CARVE)


# --- pairs_csv ---------------------------------------------------------------------------------


def test_summarization_csv_with_quoted_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_bytes(b'id,article,summary\r\n'
                     b'1,"Markets rose, then fell.\r\nAnalysts, however, were calm.",Markets were mixed.\r\n'
                     b'2,"Rain, wind and snow hit the coast.","Storm hits, coast braces."\r\n')
    splits = pairs_csv(str(path), "article", "summary", str(path), str(path), **CARVE)
    assert splits["train"] == [("Markets rose, then fell.\nAnalysts, however, were calm.", "Markets were mixed."),
                               ("Rain, wind and snow hit the coast.", "Storm hits, coast braces.")]
    assert splits["val"] == splits["test"] == splits["train"]


def test_csv_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text("id,article,summary\n1,text,sum\n")
    assert refused("column 'text'", pairs_csv, str(path), "text", "summary", None, None, **CARVE) == \
        f"data.source: column 'text' is not in {path}; its columns are id, article, summary"
    assert refused("column 'highlights'", pairs_csv, str(path), "article", "highlights", None, None,
                   **CARVE).startswith("data.target: ")


def test_csv_short_rows_and_empty_cells_are_dropped(tmp_path: Path, caplog) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("src,tgt\nhello,bonjour\nonly source\n,nothing\n  ,  \nthanks,merci\n")
    with caplog.at_level(logging.WARNING, logger="ptlab"):
        splits = pairs_csv(str(path), "src", "tgt", str(path), str(path), **CARVE)
    assert splits["train"] == [("hello", "bonjour"), ("thanks", "merci")]
    assert sum("3 of 5 pairs" in r.getMessage() for r in caplog.records) == 3  # once per file read


def test_csv_without_data_rows_names_the_path_key(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("article,summary\n")
    good = tmp_path / "good.csv"
    good.write_text("article,summary\nsome text,short\n")
    refused("data.train_path: .*no data rows", pairs_csv, str(header), "article", "summary", None, None, **CARVE)
    refused("data.val_path: .*no data rows", pairs_csv, str(good), "article", "summary", str(header), None, **CARVE)


def test_csv_without_val_and_test_files_carves_them(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("article,summary\n" + "".join(f"article {i},summary {i}\n" for i in range(20)))
    splits = pairs_csv(str(path), "article", "summary", None, None, **CARVE)
    assert {split: len(pairs) for split, pairs in splits.items()} == {"train": 14, "val": 2, "test": 4}
    assert set(splits["train"]).isdisjoint(splits["val"] + splits["test"])


# --- carve_pairs -------------------------------------------------------------------------------


def test_carve_pairs_keeps_given_splits_and_file_order() -> None:
    train = [(f"s{i}", f"t{i}") for i in range(40)]
    given = {"val": [("v", "w")], "test": [("x", "y")]}
    assert carve_pairs(train, given, 0.25, 0.25, 0) == {"train": train, **given}
    splits = carve_pairs(train, {}, 0.25, 0.25, 3)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [20, 10, 10]
    for pairs in splits.values():
        assert pairs == sorted(pairs, key=lambda pair: int(pair[0][1:]))
