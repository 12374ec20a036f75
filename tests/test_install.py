"""Installed the way Python packages are installed: the built wheel, in a fresh virtual environment, from any folder.

Offline: the wheel is built without build isolation, installed with ``--no-index
--no-deps``, and the new environment reuses this one's dependencies through a
``.pth`` file (which adds their folder to ``sys.path`` without running this
environment's editable-install hook, so the wheel's ptlab is the one imported).
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import ptlab
from conftest import REPO, subprocess_env


def _run(*cmd: str | Path, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = subprocess_env()
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(key, None)
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the source tree (so the build writes nothing into the checkout)."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("ptlab", "configs", "hydra_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", tmp_path / "dist", src, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("ptlab-*.whl")
    return wheel


def _fresh_venv(folder: Path) -> Path:
    """A new virtual environment that sees this environment's installed packages; returns its python."""
    _run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder.parent)
    python = folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=folder).stdout.strip()
    ours = {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "zz_ptlab_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def test_the_wheel_installs_and_trains_from_any_folder(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for name in ("ptlab", "hydra_plugins") for p in (REPO / name).rglob("*.py")}
    configs = {f"ptlab/{p.relative_to(REPO).as_posix()}" for p in (REPO / "configs").rglob("*.yaml")}
    assert modules <= names, f"missing from the wheel (add the package to pyproject.toml): {sorted(modules - names)}"
    assert configs <= names, f"configs missing from the wheel: {sorted(configs - names)}"

    venv = tmp_path / "venv"
    venv.mkdir()
    python = _fresh_venv(venv)
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel,
         cwd=tmp_path)
    where = _run(python, "-c", "import ptlab, ptlab.paths; print(ptlab.__file__); print(ptlab.paths.CONFIG_DIR)",
                 cwd=tmp_path).stdout.split("\n")
    package, config_dir = Path(where[0]).resolve(), Path(where[1]).resolve()
    assert venv.resolve() in package.parents, f"ptlab imported from {package}, not from the new environment"
    assert config_dir == package.parent / "configs" and (config_dir / "train.yaml").is_file()
    sweepers = _run(python, "-c", "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
                    "print([c.__module__ for c in Plugins.instance().discover(Sweeper)])", cwd=tmp_path).stdout
    assert "hydra_plugins.ptlab_optuna_sweeper" in sweepers  # Hydra's own scan finds the wheel's hydra/sweeper=optuna

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = python.parent / ("ptlab.exe" if sys.platform == "win32" else "ptlab")
    assert _run(script, "--version", cwd=elsewhere).stdout == f"ptlab {ptlab.__version__}\n"
    _run(script, "train", "task=logreg", "trainer.max_epochs=1", "trainer.progress=plain", cwd=elsewhere)
    (metrics,) = (elsewhere / "outputs").rglob("metrics.json")
    assert metrics.parent.parent == elsewhere / "outputs" / "logreg"
