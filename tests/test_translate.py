"""task=translate as a user drives it: train, translate, eval, the errors, summarization on a CSV, TensorBoard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import ptlab
from conftest import read_metrics, run_ptlab, train_here
from ptlab.cli import main

# 1500 training numbers, two epochs of 47 batches, a 1+1-layer model: about 7 s, far above the baselines.
SMALL = ["task=translate", "data.train_size=1500", "data.val_size=64", "data.test_size=64", "data.batch_size=32",
         "model.encoder_layers=1", "model.decoder_layers=1", "model.n_embd=64", "model.n_head=2",
         "optimizer.lr=0.003", "trainer.max_epochs=2", "logger=[tensorboard]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("translate") / "run"
    train_here(*SMALL, run_dir=folder)
    return folder


def best(run_dir: Path) -> str:
    return f"ckpt={run_dir / 'checkpoints' / 'best.pt'}"


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def test_translate_a_text_and_a_file_with_a_blank_line(run_dir: Path, tmp_path: Path) -> None:
    proc = run_ptlab("translate", best(run_dir), "text=einundsiebzig", cwd=tmp_path, check=True)
    assert len(proc.stdout.splitlines()) == 1 and proc.stdout.strip(), proc.stdout
    lines = tmp_path / "numbers.txt"
    lines.write_text("zwölf\n\ndreihundert\n")
    proc = run_ptlab("translate", best(run_dir), f"input={lines}", "beam=3", cwd=tmp_path, check=True)
    out = proc.stdout.split("\n")
    assert len(out) == 4 and out[1] == "" and out[0] and out[2], proc.stdout  # one line out per line in


def test_translate_refuses_unknown_characters_empty_input_and_other_checkpoints(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert_one_line_error(run_ptlab("translate", best(run_dir), "text=zwölf€", cwd=tmp_path), "'€'",
                          "never occurred in the training sources")  # the user's path: a process, its exit code
    other = tmp_path / "logreg"
    train_here("task=logreg", "trainer.max_epochs=1", run_dir=other)
    # the same error boundary in this process (ptlab.cli.main returns the exit code the process would have)
    for args, fragment in ((["translate", best(run_dir), "text=  "], "nothing to translate"),
                           (["translate", best(run_dir)], "text="),
                           (["translate", best(other), "text=eins"], "task=translate"),
                           (["generate", best(run_dir)], "language model"),  # other commands point elsewhere
                           (["predict", best(run_dir), f"input={tmp_path / 'x.txt'}", f"out={tmp_path / 'y.txt'}"],
                            "ptlab translate")):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_eval_reports_the_decoded_metrics_with_the_chosen_beam(run_dir: Path, tmp_path: Path) -> None:
    trained = read_metrics(run_dir)
    out = tmp_path / "eval.json"
    run_ptlab("eval", best(run_dir), f"out={out}", cwd=tmp_path, check=True)
    metrics = json.loads(out.read_text())
    assert {"test/loss", "test/bleu", "test/chrf", "test/exact", "test/ppl"} <= metrics.keys()
    # best.pt holds the weights the run's own test pass judged: the same numbers
    assert metrics["test/chrf"] == pytest.approx(trained["test/chrf"], abs=1e-4)
    beam = ptlab.evaluate(run_dir / "checkpoints" / "best.pt", overrides=["objective.beam=4"])
    assert beam["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-5)  # teacher forcing: no decoding in it
    assert beam["test/chrf"] != metrics["test/chrf"]  # the beam decodes otherwise


def test_every_run_reports_its_baselines_and_writes_tensorboard_samples(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = read_metrics(run_dir)
    for name in ("bleu", "chrf", "exact"):
        assert f"test/{name}_copy" in metrics and f"test/{name}_dictionary" in metrics
    assert metrics["test/exact_copy"] == 0.0  # German words are never their English translation
    # a small budget already clears the word-by-word dictionary by far (it cannot split a German compound)
    assert metrics["test/chrf"] > 1.5 * metrics["test/chrf_dictionary"] > 0, metrics
    assert metrics["test/bleu"] > metrics["test/bleu_dictionary"], metrics
    assert metrics["test/ppl"] > 1 and "test/ppl_dictionary" not in metrics
    texts = []
    for events in (run_dir / "tb").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"tensors": 0})
        acc.Reload()
        if "val/samples/text_summary" in acc.Tags()["tensors"]:
            texts += [e.tensor_proto.string_val[0].decode() for e in acc.Tensors("val/samples/text_summary")]
    assert texts and "| source | reference | hypothesis |" in texts[-1]
    assert texts[-1].count("\n") == 1 + 4  # the header, its rule and objective.samples=4 rows


def test_a_summarizer_trains_on_two_columns_of_a_csv_and_reports_rouge(tmp_path: Path) -> None:
    articles = tmp_path / "news.csv"
    with open(articles, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["article", "summary"])
        for i in range(120):
            lead = f"team {i % 7} won the match {i}"
            writer.writerow([f"{lead}. the crowd, {i} people, cheered.\nmore later.", lead])
    proc = run_ptlab("train", "task=translate", "data=pairs_csv", f"data.train_path={articles}",
                     "data.source=article", "data.target=summary", "objective.metrics=[rouge]",  # the command
                     "data.source_vocab_size=300", "model.n_embd=32",
                     "model.n_head=2", "model.encoder_layers=1", "model.decoder_layers=1", "trainer.max_epochs=2",
                     "trainer.progress=plain", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=True)
    metrics = read_metrics(tmp_path / "run")
    for name in ("rouge1", "rouge2", "rougel"):
        assert 0 <= metrics[f"test/{name}"] <= 1 and f"test/{name}_copy" in metrics
    assert metrics["test/rouge1_copy"] > 0.3  # the summary is the article's lead: copying scores well
    assert "test/rouge1" in proc.stdout + proc.stderr


def test_bad_input_is_one_line_before_any_run_folder(tmp_path: Path) -> None:
    tsv = tmp_path / "fra.txt"
    tsv.write_text("Go.\tVa !\nno tab on this line\n")
    proc = run_ptlab("train", "task=translate", "data=tsv_pairs", f"data.train_path={tsv}",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(proc, "data.train_path", "line 2")
    proc = run_ptlab("train", "task=translate", "data.source=xx", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_one_line_error(proc, "data.source", "en, de, fr")
    assert not (tmp_path / "run").exists()
