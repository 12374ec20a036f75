"""A public data set's files under ``data.root``: fetched when ``data.download=true``, refused by name when missing."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ptlab.errors import ConfigError


def dataset_folder(root: str, folder: str, files: Sequence[str], data_name: str, download: bool,
                   sources: Sequence[str], gz_ok: bool = False) -> Path:
    """``root/folder`` holding ``files``, fetched from ``sources`` (:func:`fetch`) first if asked and any is missing."""
    path = Path(root).expanduser() / folder
    if download and _missing(path, files, gz_ok):
        fetch(sources, root, data_name)
    require(path, files, data_name, gz_ok)
    return path


def _missing(folder: Path, files: Sequence[str], gz_ok: bool = False) -> list[str]:
    """The ``files`` (or folders) not in ``folder``; with ``gz_ok``, ``NAME.gz`` stands in for ``NAME``."""
    return [f for f in files if not (folder / f).exists() and not (gz_ok and (folder / f"{f}.gz").exists())]


def require(folder: Path, files: Sequence[str], data_name: str, gz_ok: bool = False) -> None:
    """Refuse, naming each missing file, unless ``folder`` holds all of ``files``."""
    absent = _missing(folder, files, gz_ok)
    if absent:
        raise ConfigError(f"data.root: {data_name} files {', '.join(absent)} are not in {folder}; pass "
                          "data.download=true to fetch them, or data.root=DIR where they are")


def fetch(sources: Sequence[str], root: str, data_name: str) -> None:
    """Fetch a data set into ``root``, trying each source in turn until one works.

    A source is an archive's URL (downloaded and unpacked into ``root``) or the
    name of a torchvision data set class (``"MNIST"``), whose own download
    fetches its train and test files into its folder under ``root``.
    """
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    into, errors = str(Path(root).expanduser()), []
    for source in sources:
        try:
            if "://" in source:
                download_and_extract_archive(source, into)
            else:
                for train in (True, False):
                    getattr(datasets, source)(into, train=train, download=True)
            return
        except Exception as err:  # network errors come in many types
            errors.append(f"{source}: {err}")
    raise ConfigError(f"data.download: could not download {data_name} ({'; '.join(errors)}); put the files under "
                      "data.root yourself and pass data.download=false")
