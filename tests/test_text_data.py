"""The text pipeline: tokenizers, language-modelling windows, padded texts, and the real on-disk layouts."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_ptlab, subprocess_env
from ptlab.data.text import ag_news, csv_text, imdb, python_docs, split_by_position, textfile, wikitext2
from ptlab.data.token_batches import TokenWindows
from ptlab.data.tokenizers import BOS, PAD, UNK, encode, load_tokenizer, train_tokenizer
from ptlab.errors import ConfigError
from test_data_tabular import BAD_FILES, assert_refused, write_bad_file

CPU = torch.device("cpu")
LM = dict(target_kind="language_model", device=CPU, seed=0)
CLS = dict(target_kind="text_classification", device=CPU, seed=0)
SAMPLE = "The quick brown fox, naïvely, jumps over 2 lazy dogs.\n\tdef f(x): return x ** 2  # ok\n"


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_char_and_bpe_round_trip_exactly(kind: str) -> None:
    tok = train_tokenizer(kind, [SAMPLE * 3], vocab_size=300)
    ids = encode(tok, SAMPLE)
    assert tok.decode(ids.tolist()) == SAMPLE
    assert [tok.token_to_id(t) for t in ("<pad>", "<unk>", "<bos>")] == [PAD, UNK, BOS]


def test_word_tokenizer_splits_words_and_punctuation_and_maps_unknown_words_to_unk() -> None:
    tok = train_tokenizer("word", ["the cat sat. the dog sat!"], vocab_size=100)
    ids = encode(tok, "the cat sat on the mat.").tolist()
    assert [tok.id_to_token(i) for i in ids] == ["the", "cat", "sat", "<unk>", "the", "<unk>", "."]
    assert tok.decode(ids) == "the cat sat the ."  # specials are skipped, words joined with spaces
    assert encode(tok, tok.decode(ids)).tolist() == [i for i in ids if i != UNK]


def test_char_tokenizer_reads_unseen_characters_as_unk_and_respects_the_vocab_cap() -> None:
    tok = train_tokenizer("char", ["aaaabbbc"], vocab_size=5)  # 3 specials + the 2 most frequent
    assert tok.get_vocab_size() == 5
    assert encode(tok, "abcz").tolist() == [tok.token_to_id("a"), tok.token_to_id("b"), UNK, UNK]


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_a_saved_tokenizer_gives_the_same_ids_and_training_is_deterministic(kind: str) -> None:
    tok = train_tokenizer(kind, [SAMPLE], vocab_size=280)
    again = load_tokenizer(tok.to_str())
    assert encode(again, SAMPLE).tolist() == encode(tok, SAMPLE).tolist()
    assert train_tokenizer(kind, [SAMPLE], vocab_size=280).to_str() == tok.to_str()


def test_split_by_position_keeps_every_character_and_marks_document_starts() -> None:
    docs = ["a" * 50, "b" * 30, "c" * 20]
    splits = split_by_position(docs, val_fraction=0.2, test_fraction=0.1)
    assert "".join(t for name in ("train", "val", "test") for t, _ in splits[name]) == "".join(docs)
    assert [len(t) for t, _ in splits["train"]] == [50, 20] and splits["val"] == [("b" * 10, False), ("c" * 10, True)]
    assert splits["test"] == [("c" * 10, False)]


def test_windows_are_shifted_by_one_cover_the_epoch_once_and_depend_only_on_seed_and_epoch() -> None:
    stream = torch.arange(1000)
    train = TokenWindows(stream, block_size=16, batch_size=8, shuffle=True, seed=3)
    batches = list(train.batches(epoch=2))
    assert len(batches) == len(train) == -(-train.num_windows // 8) and train.num_windows == (1000 - 16) // 16
    for x, y in batches:
        assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)  # consecutive tokens
    starts = torch.cat([x[:, 0] for x, _ in batches])
    assert len(set((starts % 16).tolist())) == 1 and len(set(starts.tolist())) == train.num_windows  # one phase
    again = list(TokenWindows(stream, 16, 8, shuffle=True, seed=3).batches(epoch=2, start=5))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches[5:], again))  # resume mid-epoch: the same batches
    other = torch.cat([x[:, 0] for x, _ in train.batches(epoch=3)])
    assert not torch.equal(starts, other)
    val = TokenWindows(stream, 16, 8, shuffle=False, seed=3)
    assert torch.equal(torch.cat([x[:, 0] for x, _ in val]), torch.arange(0, val.num_windows * 16, 16))


def test_python_docs_is_the_default_corpus_in_sorted_topic_order() -> None:
    from pydoc_data.topics import topics

    data = python_docs(block_size=64, **LM)
    tok = load_tokenizer(data.tokenizer)
    first = sorted(topics)[0]
    head = data.train.stream[:40].tolist()
    assert head[0] == BOS and tok.decode(head[1:]) == topics[first][:39]
    assert data.info == {"vocab_size": tok.get_vocab_size(), "block_size": 64}
    total = sum(len(t.stream) for t in (data.train, data.val, data.test))
    assert total == sum(len(v) for v in topics.values()) + len(topics)  # every character, one <bos> per topic


def write_wikitext(root: Path) -> None:
    folder = root / "wikitext-2-raw"
    folder.mkdir(parents=True)
    for name, words in (("train", 400), ("valid", 120), ("test", 130)):
        text = "\n = Valkyria Chronicles = \n\n" + " ".join(f"word{i % 37}" for i in range(words)) + " .\n"
        (folder / f"wiki.{name}.raw").write_text(text, encoding="utf-8")


def test_wikitext2_layout_loads_with_its_own_splits(tmp_path: Path) -> None:
    write_wikitext(tmp_path)
    data = wikitext2(root=str(tmp_path), tokenizer="word", block_size=16, batch_size=4, **LM)
    assert [len(s.stream) for s in (data.train, data.val, data.test)] == [1 + 4 + n + 1 for n in (400, 120, 130)]
    x, y = next(iter(data.val))
    assert x.shape == (4, 16) and x[0, 0] == BOS
    with pytest.raises(ConfigError, match=r"data.root: wikitext2 files wiki.train.raw, .* not in .*data.download=true"):
        wikitext2(root=str(tmp_path / "nowhere"), **LM)


def write_imdb(root: Path, per_class: int = 12) -> None:
    for part in ("train", "test"):
        for label, word in (("pos", "great"), ("neg", "awful")):
            folder = root / "aclImdb" / part / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                (folder / f"{i}_{8 if label == 'pos' else 2}.txt").write_text(
                    f"This film was {word}.<br /><br />{'Really ' * (i % 4)}{word}!", encoding="utf-8")
    (root / "aclImdb" / "train" / "unsup").mkdir()  # unlabelled reviews are ignored


def test_imdb_layout_loads_with_labels_from_folders(tmp_path: Path) -> None:
    write_imdb(tmp_path)
    data = imdb(root=str(tmp_path), val_fraction=0.25, batch_size=8, **CLS)
    assert data.info["num_classes"] == 2 and data.info["classes"] == ["neg", "pos"]
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (18, 6, 24)
    tok = load_tokenizer(data.tokenizer)
    tokens, lengths, labels = next(iter(data.test))
    assert tokens[0, 0] == BOS and "<br" not in tok.decode(tokens[0].tolist())
    words = {label: {tok.id_to_token(int(i)) for t, _, y in data.test for i in t[y == label].flatten()}
             for label in (0, 1)}
    assert "great" in words[1] - words[0] and "awful" in words[0] - words[1]  # pos is label 1


def write_ag_news(root: Path) -> None:
    folder = root / "ag_news_csv"
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n", encoding="utf-8")
    topics = {1: "minister election", 2: "match goal", 3: "stocks market", 4: "software chip"}
    for name, n in (("train", 40), ("test", 12)):
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            for i in range(n):
                label = i % 4 + 1
                writer.writerow([str(label), f"Headline about {topics[label]}", f"More on {topics[label]}\\today"])


def test_ag_news_csv_layout_loads_with_class_names(tmp_path: Path) -> None:
    write_ag_news(tmp_path)
    data = ag_news(root=str(tmp_path), val_fraction=0.2, batch_size=16, **CLS)
    assert data.info["num_classes"] == 4 and data.info["classes"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert (data.train.num_samples, data.val.num_samples, data.test.num_samples) == (32, 8, 12)
    tok = load_tokenizer(data.tokenizer)
    tokens, lengths, labels = next(iter(data.test))
    first = tok.decode(tokens[0, :lengths[0]].tolist())
    assert first == "Headline about minister election More on minister election today" and labels[0] == 0


def test_padded_batches_are_cut_to_their_longest_text_and_bucketing_pads_less(tmp_path: Path) -> None:
    path = tmp_path / "texts.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([(" ".join(["w"] * (1 + i % 40)), "ab"[i % 2]) for i in range(400)])
    common = dict(train_path=str(path), text="text", label="label", batch_size=16, max_length=30, **CLS)
    plain = csv_text(**common)
    for tokens, lengths, labels in plain.train.batches(epoch=1):
        assert tokens.shape[1] == int(lengths.max()) <= 30 and lengths.device.type == "cpu"
        assert all((tokens[i, n:] == PAD).all() and (tokens[i, :n] != PAD).all() for i, n in enumerate(lengths))
    bucketed = csv_text(bucket_by_length=True, **common)

    def padding(data) -> int:
        return sum(t.numel() - int(n.sum()) for t, n, _ in data.train.batches(epoch=1))

    assert padding(bucketed) < padding(plain) / 2
    for data in (plain, bucketed):  # the order is a function of (seed, epoch): resume mid-epoch gets the same batches
        epoch = list(data.train.batches(epoch=1))
        rebuilt = csv_text(bucket_by_length=data.train.bucket, **common)
        resumed = rebuilt.train.batches(epoch=1, start=3)
        assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch[3:], resumed, strict=True))
        assert not torch.equal(epoch[0][2], next(data.train.batches(epoch=2))[2])


def test_bad_text_input_is_a_clear_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match=r"data.path: .*empty.txt is empty"):
        textfile(path=str(empty), **LM)
    short = tmp_path / "short.txt"
    short.write_text("a few characters of text. " * 40)
    with pytest.raises(ConfigError, match=r"data.block_size: 128 is too long for the val split \(5\d tokens"):
        textfile(path=str(short), **LM)
    table = tmp_path / "one_class.csv"
    table.write_text("text,label\nhello there,a\ngood day,a\n")
    with pytest.raises(ConfigError, match=r"data.label: column 'label' holds a single class \('a'\)"):
        csv_text(train_path=str(table), text="text", label="label", **CLS)
    with pytest.raises(ConfigError, match=r"data.text: column 'review' is not in .*its columns are text, label"):
        csv_text(train_path=str(table), text="review", label="label", **CLS)
    with pytest.raises(ConfigError, match=r"data=textfile holds text for language model.*use objective=text"):
        textfile(path=str(short), target_kind="classification", device=CPU, seed=0)


def test_cli_refuses_an_empty_corpus_before_making_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    proc = subprocess.run([sys.executable, "-m", "ptlab", "train", "task=rnn", "data=textfile", "data.path=empty.txt",
                           "hydra.run.dir=run"], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("ptlab: error: data.path: ") and "is empty" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", BAD_FILES)
def test_cli_refuses_a_text_csv_that_is_not_utf8_text(tmp_path: Path, kind: str) -> None:
    expected = "ptlab: error: data.train_path: reviews.csv " + write_bad_file(kind, tmp_path / "reviews.csv")
    proc = run_ptlab("train", "task=rnn", "data=csv_text", "data.train_path=reviews.csv", "data.text=text",
                     "data.label=label", "trainer.max_steps=1", "trainer.progress=plain", "hydra.run.dir=run",
                     cwd=tmp_path)
    assert_refused(proc, expected, tmp_path, {"reviews.csv"})


def test_a_text_file_that_is_utf16_is_named(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(("some text to model. " * 50).encode("utf-16"))
    with pytest.raises(ConfigError, match=r"^data\.path: .*corpus\.txt is not UTF-8 text \(it looks like UTF-16\); "
                                          r"re-save it as UTF-8$"):
        textfile(path=str(corpus), **LM)
