"""Start-up: a run imports only what it uses (issue 13).

The checks run a tiny logreg fit in a fresh interpreter and look at
``sys.modules`` afterwards. Two of them are expected to fail today and are
marked ``xfail(strict=True)``, so they turn red the day they pass and their mark
must go: torchmetrics' package ``__init__`` imports every domain it has (audio,
image → torchvision → ``torch._dynamo``, text, matplotlib for plots), and any
``from torchmetrics.x import ...`` runs it; ptlab's built-in metrics still
import torchmetrics. (torch's optimizers import ``torch._dynamo`` too: their
methods are wrapped in ``torch._disable_dynamo``, which imports it on first call.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import subprocess_env

LOGREG_FIT = """
import json, sys
import ptlab
cfg = ptlab.compose(["task=logreg", "trainer.max_epochs=1", "trainer.progress=plain", "checkpoint.save=false"])
metrics = ptlab.train(cfg)
assert metrics["step"] > 0 and "test/acc" in metrics and "test/acc_sklearn" in metrics
print(json.dumps(sorted(sys.modules)))
"""
UNUSED_BY_LOGREG_TORCHMETRICS = ("torchmetrics.audio", "torchmetrics.image", "torchmetrics.text",
                                 "torchmetrics.detection", "torchmetrics.multimodal", "torchvision", "matplotlib")
TORCHMETRICS_IMPORTS_ALL = ("ptlab's metrics import torchmetrics, whose package __init__ imports every domain "
                            "(and torchvision.ops → torch._dynamo); drop the mark when they no longer do")


@pytest.fixture(scope="module")
def logreg_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The modules loaded after building and fitting one epoch of logreg in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", LOGREG_FIT], cwd=tmp_path_factory.mktemp("startup"),
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_reading_a_bundled_table_imports_no_sklearn_datasets(logreg_modules: set[str]) -> None:
    assert "sklearn.datasets" not in logreg_modules
    assert "sklearn.linear_model" in logreg_modules  # the logistic baseline (test/acc_sklearn) is used and stays


@pytest.mark.xfail(strict=True, reason=TORCHMETRICS_IMPORTS_ALL)
def test_an_uncompiled_run_imports_no_dynamo(logreg_modules: set[str]) -> None:
    assert "torch._dynamo" not in logreg_modules


@pytest.mark.xfail(strict=True, reason=TORCHMETRICS_IMPORTS_ALL)
def test_no_torchmetrics_domain_that_logreg_does_not_use(logreg_modules: set[str]) -> None:
    assert not logreg_modules & set(UNUSED_BY_LOGREG_TORCHMETRICS)
