"""Where ptlab's own files live.

The configs are one folder, ``configs/`` at the root of the source tree: the
folder users read and edit. A wheel (``pip install .``, or the built ``.whl``)
ships that same folder as package data, ``ptlab/configs/`` (pyproject.toml maps
the package ``ptlab.configs`` onto ``configs/``). So the installed copy is used
when it is there, and a source checkout or an editable install reads the root
folder itself.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _config_dir() -> Path:
    """``ptlab/configs`` in an installed wheel, else ``configs/`` beside the package (source tree, editable)."""
    installed = PACKAGE_DIR / "configs"
    return installed if (installed / "train.yaml").is_file() else PACKAGE_DIR.parent / "configs"


CONFIG_DIR = _config_dir()
