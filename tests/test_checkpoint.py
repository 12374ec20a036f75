"""Checkpoint files: plain data, atomic writes, safe loading, fine-tuning from them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import ptlab
from conftest import read_metrics, run_ptlab
from ptlab.errors import ConfigError
from ptlab.engine.checkpoint import (
    FORMAT_VERSION, MIGRATIONS, CheckpointError, clean_state_dict, load_checkpoint, rng_state, save_atomic,
    set_rng_state,
)

KEYS = {"format_version", "ptlab_version", "torch_version", "config", "data_info", "tokenizer", "data_state", "model",
        "optimizers", "schedulers", "scaler", "rng", "loop", "logs", "best", "callbacks"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short cnn run on digits with step checkpoints."""
    workdir = tmp_path_factory.mktemp("trained")
    run_dir = workdir / "run"
    run_ptlab("train", "task=cnn", "trainer.max_epochs=1", "checkpoint.every_n_steps=5", "checkpoint.keep_last=2",
              "trainer.progress=plain", f"hydra.run.dir={run_dir}", cwd=workdir, check=True)
    return run_dir


def test_every_checkpoint_is_plain_data_with_the_documented_keys(trained_run: Path) -> None:
    folder = trained_run / "checkpoints"
    names = sorted(p.name for p in folder.glob("*.pt"))
    assert names == ["best.pt", "last.pt", "step-00000015.pt", "step-00000020.pt"]
    for name in names:
        payload = torch.load(folder / name, weights_only=True)
        assert set(payload) == KEYS, name
        assert payload["format_version"] == FORMAT_VERSION
        assert isinstance(payload["config"], dict) and payload["config"]["task"] == "cnn"
        assert payload["tokenizer"] is None  # only text data has one
        assert payload["data_state"] == {}  # only a recommender's data has ids to keep
        assert all(t.device.type == "cpu" for t in payload["model"].values())
        assert not any(k.startswith(("module.", "_orig_mod.")) for k in payload["model"])
    last = torch.load(folder / "last.pt", weights_only=True)
    assert last["loop"]["step"] == 20 and last["loop"]["epoch"] == 1
    assert last["optimizers"]["main"]["state"] and last["schedulers"]["main"]["last_epoch"] == 20
    assert set(last["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert last["best"]["value"] is not None
    assert (folder / "last.pt").read_bytes() == (folder / "step-00000020.pt").read_bytes()
    assert not os.path.samefile(folder / "last.pt", folder / "step-00000020.pt")  # a copy: damage reaches one file
    assert not list(folder.glob(".*.tmp"))


def test_rng_state_round_trips(tmp_path: Path) -> None:
    import random

    state = rng_state()
    save_atomic({"rng": state}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_save_is_atomic_when_serialization_fails(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    save_atomic({"format_version": 1, "config": {}, "model": {}}, target)
    before = target.read_bytes()
    with pytest.raises(Exception):
        save_atomic({"bad": lambda: None}, target)  # a lambda cannot be pickled
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_clean_state_dict_unwraps_compile() -> None:
    model = torch.nn.Linear(2, 1)
    assert set(clean_state_dict(torch.compile(model))) == {"weight", "bias"}


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(workdir: Path) -> None:
    marker = workdir / "pwned"
    evil = workdir / "evil.pt"
    torch.save({"format_version": 1, "config": {}, "model": {}, "x": Exploit(marker)}, evil)
    with pytest.raises(CheckpointError, match="refusing to load .* holds Python objects"):
        load_checkpoint(evil)
    for args in (["eval", f"ckpt={evil}"], ["train", f"finetune.from={evil}", f"hydra.run.dir={workdir / 'ft'}"]):
        proc = run_ptlab(*args, cwd=workdir)
        assert proc.returncode == 2 and "holds Python objects" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_plain_pickle_and_foreign_files_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain)
    assert not marker.exists()
    foreign = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a ptlab checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="damaged or not a torch file"):
        load_checkpoint(text)


def test_newer_format_is_refused_and_older_ones_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = tmp_path / "newer.pt"
    torch.save({"format_version": FORMAT_VERSION + 1, "config": {}, "model": {}}, newer)
    with pytest.raises(CheckpointError, match="newer than this ptlab reads.*upgrade ptlab"):
        load_checkpoint(newer)
    older = tmp_path / "older.pt"
    monkeypatch.setitem(MIGRATIONS, 0, lambda p: {**{k: v for k, v in p.items() if k != "weights"}, "model": p["weights"]})
    torch.save({"format_version": 0, "config": {}, "model": {}, "weights": {"w": torch.ones(1)}}, older)
    migrated = load_checkpoint(older)
    assert migrated["format_version"] == FORMAT_VERSION and "weights" not in migrated and "w" in migrated["model"]


def digit_folder(root: Path, classes: int = 3, per_class: int = 40) -> Path:
    """A class-per-folder image set of 8×8 grey PNGs cut from the bundled digits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(classes):
        (root / f"digit{label}").mkdir(parents=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(root / f"digit{label}" / f"{i}.png")
    return root


def test_finetune_freezes_and_reinitializes(trained_run: Path, workdir: Path) -> None:
    folder = digit_folder(workdir / "three")
    source = trained_run / "checkpoints" / "best.pt"
    common = ["task=cnn", "data=imagefolder", f"data.root={folder}", "data.channels=1", "data.image_size=8",
              "data.num_workers=0", f"finetune.from={source}", "finetune.freeze=[features.*]",
              "trainer.max_epochs=2", "trainer.progress=plain"]
    refused = run_ptlab("train", *common, f"hydra.run.dir={workdir / 'refused'}", cwd=workdir)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "shape-mismatched: head.5.weight (10, 128) → (3, 128)" in refused.stderr
    assert "finetune.reinit=[head.5.*]" in refused.stderr
    assert not (workdir / "refused").exists()

    run_dir = workdir / "finetuned"
    proc = run_ptlab("train", *common, "finetune.reinit=[head.5.*]", "finetune.lr_mult=0.5",
                     f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "reinitialized" in proc.stdout and "frozen" in proc.stdout
    before = torch.load(source, weights_only=True)["model"]
    after = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    frozen = [k for k in before if k.startswith("features.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BN statistics
    assert after["head.5.weight"].shape == (3, 128)
    assert not torch.equal(before["head.2.weight"], after["head.2.weight"])  # loaded and trained
    assert read_metrics(run_dir)["test/acc"] > 0.5
    # eval rebuilds the fine-tuned model from its own checkpoint, even if the source is gone
    source.rename(source.with_suffix(".moved"))
    evaluated = run_ptlab("eval", f"ckpt={run_dir}/checkpoints/best.pt", cwd=workdir)
    source.with_suffix(".moved").rename(source)
    assert evaluated.returncode == 0, evaluated.stderr


def test_finetune_glob_that_matches_nothing(trained_run: Path) -> None:
    cfg = ptlab.compose(["task=cnn", f"finetune.from={trained_run}/checkpoints/best.pt", "finetune.freeze=[feature.*]"])
    with pytest.raises(ConfigError, match="finetune.freeze: 'feature.*' matches no parameter"):
        ptlab.build(cfg)


def test_pretrained_weights_missing_locally_is_a_clear_error(workdir: Path) -> None:
    env_home = {"TORCH_HOME": str(workdir / "torch_home")}
    proc = run_ptlab("train", "task=cnn", "model=resnet18", "model.pretrained=true",
                     f"hydra.run.dir={workdir / 'run'}", cwd=workdir, env=env_home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.pretrained:" in proc.stderr and "is not cached" in proc.stderr and "model.pretrained=false" in proc.stderr
