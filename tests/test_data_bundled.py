"""scikit-learn's bundled files, read without importing scikit-learn: the same arrays, to the bit, as its loaders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, subprocess_env
from ptlab.data import bundled


@pytest.mark.parametrize("name", ["load_breast_cancer", "load_diabetes", "load_digits"])
def test_bundled_arrays_are_sklearns_to_the_bit(name: str) -> None:
    import sklearn.datasets

    ours = getattr(bundled, name)()
    theirs = getattr(sklearn.datasets, name)(return_X_y=True)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.dtype == reference.dtype and mine.shape == reference.shape
        assert mine.tobytes() == np.ascontiguousarray(reference).tobytes()


def test_reading_the_bundled_files_imports_no_sklearn() -> None:
    code = ("import sys\n"
            "from ptlab.data import bundled\n"
            "bundled.load_breast_cancer(), bundled.load_diabetes(), bundled.load_digits()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
