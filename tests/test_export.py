"""``ptlab export``: the exported program, loaded back as a deployer loads it, gives the model's outputs at two
batch sizes; export.json records the real difference and the inputs; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import TINY, run_ptlab
from ptlab.api import rebuild
from ptlab.cli import main
from ptlab.errors import ConfigError
from ptlab.export import TOLERANCE, export_checkpoint

torch.set_num_threads(1)

SMALL = {  # tiny models and splits: an export traces the same code whatever the size
    "logreg": ["task=logreg"],
    "cnn": ["task=cnn", "model.channels=[4,8]", "model.hidden=16"],
    "transformer": ["task=transformer", "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "data.block_size=16",
                    "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"],
    "gan": ["task=gan", "model.width=8", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"],
    "rnn": ["task=rnn", "model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "data.block_size=16",
            "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"],
}
CHECKPOINTS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """``checkpoint(task)``: the best.pt of a tiny run of ``task``, trained once per module."""

    def make(task: str) -> Path:
        if task not in CHECKPOINTS:
            run_dir = tmp_path_factory.mktemp(task) / "run"
            ptlab.train(ptlab.compose([*SMALL[task], *TINY]), run_dir=run_dir)
            CHECKPOINTS[task] = run_dir / "checkpoints" / "best.pt"
        return CHECKPOINTS[task]

    return make


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory: pytest.TempPathFactory):
    """``exported(task, fmt)``: (the checkpoint, the export's path) of ``task``'s checkpoint as ``fmt``, made once."""
    made: dict[tuple[str, str], tuple[Path, Path]] = {}

    def make(task: str, fmt: str) -> tuple[Path, Path]:
        if (task, fmt) not in made:
            out = tmp_path_factory.mktemp(f"{task}-{fmt}") / f"deploy/model.{fmt}"
            assert export_checkpoint(checkpoint(task), fmt, out).path == out
            made[task, fmt] = checkpoint(task), out
        return made[task, fmt]

    return make


def samples(ckpt: Path) -> tuple[torch.nn.Module, list[tuple[torch.Tensor, ...]]]:
    """(the eager module, [the first test batch, one shorter row]), rebuilt here as the issue defines them."""
    _, run = rebuild(ckpt, device="cpu")
    model = run.model.eval()
    batch = next(iter(run.data.test.batches()))
    if run.objective.target_kind == "generation":
        z = model.noise(len(batch[0]), torch.Generator().manual_seed(0))
        return model.generator, [(z,), (z[:1],)]
    x = batch[0]
    if run.objective.target_kind == "language_model":
        return model, [(x,), (x[:1, : x.shape[1] // 2],)]
    return model, [(x,), (x[:1],)]


def loaded(path: Path):
    """The exported file, opened the way a deployer opens it: torch.export.load, or an onnxruntime session."""
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda *xs: torch.from_numpy(session.run(None, {n: x.contiguous().numpy() for n, x in zip(names, xs)})[0])


FAST = [("logreg", "onnx"), ("transformer", "pt2")]  # ~3 s each; the other six take as long
SLOW = [("logreg", "pt2"), ("cnn", "pt2"), ("cnn", "onnx"), ("transformer", "onnx"), ("gan", "pt2"), ("gan", "onnx")]


@pytest.mark.parametrize("task, fmt", [*FAST, *(pytest.param(*case, marks=pytest.mark.slow) for case in SLOW)])
def test_the_exported_program_gives_the_models_outputs_and_export_json_records_the_difference(
        exported, task: str, fmt: str) -> None:
    ckpt, out = exported(task, fmt)
    manifest = json.loads((out.parent / "export.json").read_text())
    module, (sample, shorter) = samples(ckpt)
    program = loaded(out)
    with torch.no_grad():
        diffs = [(program(*xs) - module(*xs)).abs().max().item() for xs in (sample, shorter)]
        assert program(*shorter).shape[0] == 1 and program(*sample).shape[0] == len(sample[0]) > 1
    assert manifest["check"]["max_abs_diff"] == pytest.approx(max(diffs), rel=1e-6, abs=1e-12)
    assert max(diffs) <= manifest["check"]["bound"] and manifest["check"]["bound"] >= TOLERANCE[fmt]
    assert manifest["check"]["batch_sizes"] == [len(sample[0]), 1]
    assert manifest["file"] == out.name and manifest["format"] == fmt
    assert manifest["torch_version"] == torch.__version__
    assert (manifest["opset"] is None) == (fmt == "pt2")
    assert all(spec["shape"][0] == "batch" for spec in manifest["inputs"] + manifest["outputs"])
    assert [spec["dtype"] for spec in manifest["inputs"]] == [str(x.dtype).removeprefix("torch.") for x in sample]
    assert manifest["dynamic"]["batch"]["max"] is None
    assert manifest["exported"] == ("generator" if task == "gan" else "model")


def test_a_text_model_gets_its_tokenizer_and_a_dynamic_sequence_up_to_its_context(exported) -> None:
    from tokenizers import Tokenizer

    ckpt, out = exported("transformer", "pt2")
    manifest = json.loads((out.parent / "export.json").read_text())
    saved = torch.load(ckpt, weights_only=True)["tokenizer"]
    assert (out.parent / "tokenizer.json").read_text() == saved and manifest["tokenizer"] == "tokenizer.json"
    assert manifest["inputs"][0]["shape"] == ["batch", "seq"] and manifest["dynamic"]["seq"]["max"] == 16
    assert manifest["check"]["sequence_lengths"] == [16, 8]
    ids = Tokenizer.from_file(str(out.parent / "tokenizer.json")).encode("def f():", add_special_tokens=False).ids
    program = torch.export.load(str(out)).module()
    context = torch.tensor([[manifest["special_tokens"]["<bos>"], *ids]])  # 9 tokens: a length not checked
    model = rebuild(ckpt, device="cpu")[1].model.eval()
    with torch.no_grad():
        torch.testing.assert_close(program(context), model(context), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_an_lstm_language_model_is_exported_with_its_window_fixed(checkpoint, tmp_path: Path) -> None:
    manifest = export_checkpoint(checkpoint("rnn"), "pt2", tmp_path / "model.pt2").manifest
    assert manifest["inputs"][0]["shape"] == ["batch", 16] and "seq" not in manifest["dynamic"]
    assert manifest["check"]["batch_sizes"] == [manifest["check"]["batch_sizes"][0], 1]


def test_an_rnn_text_classifier_is_refused_in_one_line() -> None:
    from ptlab.export_inputs import refuse_unexportable
    from ptlab.models.rnn import rnn

    with pytest.raises(ConfigError, match=r"^ckpt: an RNN text classifier cannot be exported: pack_padded_sequence"):
        refuse_unexportable(rnn(vocab_size=10, block_size=8, num_classes=2, hidden_size=4, embedding_dim=4))


def test_the_command_writes_beside_the_run_and_never_replaces_an_export(checkpoint, capsys) -> None:
    ckpt = checkpoint("logreg")
    assert main(["export", f"ckpt={ckpt}", "format=pt2"]) == 0
    printed = capsys.readouterr().out
    path = ckpt.parent.parent / "export" / "pt2" / "model.pt2"
    assert f"model (logistic_regression) exported to {path}" in printed
    assert "  input  x        float32  [batch, 30]" in printed and "export.json written beside it" in printed
    before = path.read_bytes(), (path.parent / "export.json").read_text()
    assert main(["export", f"ckpt={ckpt}", "format=pt2"]) == 2
    err = capsys.readouterr().err
    assert err == f"ptlab: error: out: {path} exists (an earlier export?); pass out=OTHER_FOLDER/model.pt2, " \
                  "or remove it to export again\n"
    assert (path.read_bytes(), (path.parent / "export.json").read_text()) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["export.json", "model.pt2"]  # no temp file left


@pytest.mark.parametrize("args, error", [
    (["format=onxx"], "format: 'onxx' is not an export format. Did you mean 'onnx'? Use format=pt2 (torch.export) "
                      "or format=onnx"),
    (["ckpt=missing.pt", "format=pt2"], "ckpt: missing.pt does not exist; give the path of a ptlab checkpoint (.pt)"),
    (["ckpt=x.pt"], "format: required; e.g. ptlab export ckpt=RUN_DIR/checkpoints/best.pt format=onnx"),
    (["format=pt2", "out=model.onnx"], "out: model.onnx does not end in .pt2, the suffix of format=pt2; "
                                       "e.g. out=model.pt2"),
    (["format=pt2", "device=cuda"], "'device=cuda': expected one of ckpt=…, format=…, out=…"),
])
def test_bad_input_is_one_line_and_exit_code_2(checkpoint, args: list[str], error: str, capsys) -> None:
    if not any(a.startswith("ckpt=") for a in args):
        args = [f"ckpt={checkpoint('logreg')}", *args]
    assert main(["export", *args]) == 2
    assert capsys.readouterr().err == f"ptlab: error: {error}\n"


def test_a_file_that_is_not_a_ptlab_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    torch.save({"state_dict": {}}, tmp_path / "weights.pt")
    assert main(["export", f"ckpt={tmp_path / 'weights.pt'}", "format=pt2"]) == 2
    assert "is not a ptlab checkpoint" in capsys.readouterr().err


def test_onnx_without_its_packages_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` finds when it is not installed
    assert main(["export", "ckpt=any.pt", "format=onnx"]) == 2
    assert capsys.readouterr().err == ("ptlab: error: format: onnx needs onnx, onnxscript, onnxruntime (onnxruntime not "
                                       "installed); pip install 'ptlab[export]'\n")


@pytest.mark.slow
def test_the_cli_exports_onnx_in_a_fresh_process(checkpoint, tmp_path: Path) -> None:
    proc = run_ptlab("export", f"ckpt={checkpoint('cnn')}", "format=onnx", "out=cnn.onnx", cwd=tmp_path, check=True)
    assert "onnxruntime vs eager PyTorch: max |difference|" in proc.stdout and proc.stderr == ""
    assert json.loads((tmp_path / "export.json").read_text())["inputs"][0]["shape"] == ["batch", 1, 8, 8]
