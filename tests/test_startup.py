"""Start-up: a run imports only what it uses (issue 13).

The checks run a tiny logreg fit in a fresh interpreter and look at
``sys.modules`` afterwards. ptlab's built-in metrics do not import torchmetrics,
whose package ``__init__`` imports every domain it has (audio, image →
torchvision → ``torch._dynamo``, text, matplotlib). One check is expected to fail
and is marked ``xfail(strict=True)``, so it turns red the day it passes: torch's
own optimizers import ``torch._dynamo`` when they are built (``add_param_group``
is wrapped in ``torch._disable_dynamo``, which imports it on first call) and on
every ``step`` (``_use_grad_for_differentiable`` calls ``torch._dynamo.graph_break``),
so the loop a learner writes with ``torch.optim.SGD`` pays it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env

LOGREG_FIT = """
import json, sys
import ptlab
cfg = ptlab.compose(["task=logreg", "trainer.max_epochs=1", "trainer.progress=plain", "checkpoint.save=false"])
metrics = ptlab.train(cfg)
assert metrics["step"] > 0 and "test/acc" in metrics and "test/acc_sklearn" in metrics
print(json.dumps({"modules": sorted(sys.modules), "acc_sklearn": metrics["test/acc_sklearn"]}))
"""
UNUSED_BY_LOGREG_TORCHMETRICS = ("torchmetrics.audio", "torchmetrics.image", "torchmetrics.text",
                                 "torchmetrics.detection", "torchmetrics.multimodal", "torchvision", "matplotlib")
TORCH_OPTIM_IMPORTS_DYNAMO = ("torch.optim's optimizers import torch._dynamo when built (torch._disable_dynamo); "
                              "drop the mark when they no longer do")


def fit_logreg(cwd: Path, cache: Path) -> dict:
    """Build and fit one epoch of logreg in a fresh interpreter with its own baseline cache."""
    proc = subprocess.run([sys.executable, "-c", LOGREG_FIT], cwd=cwd, env=subprocess_env() | {"PTLAB_CACHE": str(cache)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def first_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The first logreg fit with an empty cache: it fits scikit-learn's baseline and caches its accuracy."""
    cwd = tmp_path_factory.mktemp("startup")
    return fit_logreg(cwd, cwd / "cache"), cwd


@pytest.fixture(scope="module")
def logreg_modules(first_fit: tuple[dict, Path]) -> set[str]:
    """The modules loaded after building and fitting one epoch of logreg in a fresh interpreter."""
    return set(first_fit[0]["modules"])


def test_a_second_run_on_the_same_rows_reads_the_baseline_without_scikit_learn(first_fit: tuple[dict, Path]) -> None:
    """The logistic baseline is deterministic: cached by the rows' hash, the next run skips sklearn's ≈2 s."""
    first, cwd = first_fit
    again = fit_logreg(cwd, cwd / "cache")
    assert again["acc_sklearn"] == first["acc_sklearn"]
    assert not [m for m in again["modules"] if m.split(".")[0] in ("sklearn", "scipy")]
    assert len(list((cwd / "cache" / "baselines").glob("logistic-sklearn*.json"))) == 1


def test_reading_a_bundled_table_imports_no_sklearn_datasets(logreg_modules: set[str]) -> None:
    assert "sklearn.datasets" not in logreg_modules
    assert "sklearn.linear_model" in logreg_modules  # the logistic baseline (test/acc_sklearn), fitted with a cold cache


@pytest.mark.xfail(strict=True, reason=TORCH_OPTIM_IMPORTS_DYNAMO)
def test_an_uncompiled_run_imports_no_dynamo(logreg_modules: set[str]) -> None:
    assert "torch._dynamo" not in logreg_modules


def test_no_torchmetrics_domain_that_logreg_does_not_use(logreg_modules: set[str]) -> None:
    assert not logreg_modules & set(UNUSED_BY_LOGREG_TORCHMETRICS)
    assert "torchmetrics" not in logreg_modules


def test_carving_splits_imports_no_scikit_learn(tmp_path) -> None:
    """linreg, cnn and text runs carve their splits without scikit-learn and SciPy (≈2 s of start-up)."""
    code = ("import sys, numpy as np; from ptlab.data.loaders import carve_splits; "
            "carve_splits(np.arange(100) % 3, {'test': 0.2, 'val': 0.1}, 0, stratify=True); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
