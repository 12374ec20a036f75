"""One Registry class: lazy built-ins, decorator registration, `_target_`, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ptlab
from ptlab import catalog
from ptlab.errors import ConfigError
from ptlab.registry import Registry


def test_duplicate_name_names_both_definitions() -> None:
    models = Registry("model")

    @models.register("twin")
    def first() -> None:
        """First."""

    with pytest.raises(ConfigError) as err:
        @models.register("twin")
        def second() -> None:
            """Second."""

    message = str(err.value)
    assert "duplicate model name 'twin'" in message
    here = Path(__file__).name
    assert message.count(here) == 2 and message.index(here) != message.rindex(here)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"model.name: unknown model 'simple_cn'. Did you mean 'simple_cnn'\?"):
        catalog.MODELS.get("simple_cn", "model.name")


def test_describe_reads_built_ins_without_importing_them() -> None:
    code = ("import sys; from ptlab import catalog; rows = catalog.MODELS.describe(); "
            "print(dict((r[0], r[2]) for r in rows)['simple_cnn']); print('ptlab.models.cnn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "channels=(32, 64), hidden=128, dropout=0.25" and out[1] == "False"


def write_user_module(folder: Path) -> None:
    (folder / "my_models.py").write_text(textwrap.dedent('''
        from torch import nn
        from ptlab.catalog import MODELS
        from ptlab.config import PositiveInt

        @MODELS.register("tiny_mlp")
        class TinyMLP(nn.Module):
            """One hidden layer."""

            def __init__(self, in_features: int, num_classes: int, hidden: PositiveInt = 8) -> None:
                super().__init__()
                self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

            def forward(self, x):
                return self.net(x)
    '''))


def test_user_model_by_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_user_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = ptlab.compose(["task=logreg", "~model", "+model._target_=my_models.TinyMLP", "+model.hidden=4",
                         "trainer.max_epochs=1"])
    run = ptlab.build(cfg)
    assert type(run.model).__name__ == "TinyMLP" and run.model.net[0].out_features == 4
    cfg.model.hidden = 0
    with pytest.raises(ConfigError, match="model.hidden: 0 is out of range"):
        ptlab.build(cfg)


def test_user_model_by_registered_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_user_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_models  # noqa: F401  (registers tiny_mlp)

    try:
        cfg = ptlab.compose(["task=logreg", "~model", "+model.name=tiny_mlp", "trainer.max_epochs=1",
                             "trainer.progress=plain"])
        metrics = ptlab.train(cfg)
        assert metrics["test/acc"] > 0.5
    finally:
        catalog.MODELS.entries.pop("tiny_mlp")
