"""Hydra glue: run-directory naming, composing outside ``@hydra.main``, readable errors.

Hydra's own messages for a bad override are accurate but long and end with
exit code 1; here they become one ptlab message that names the key, suggests
the nearest valid name and leads to exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator, Sequence

from ptlab.errors import ConfigError
from ptlab.overrides import Override
from ptlab.registry import did_you_mean


def claim_unique_dir(path: str) -> str:
    """Create ``path`` (or ``path_1``, ``path_2``, …) atomically and return the one created.

    ``os.mkdir`` fails when the folder exists, so two runs started in the same
    second each get their own folder, also across processes.
    """
    parent = Path(path).parent
    parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 0
    while True:
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}_{n}"


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    from ptlab.sweep.dirs import job_key

    if not OmegaConf.has_resolver("ptlab.unique_dir"):
        OmegaConf.register_new_resolver("ptlab.unique_dir", claim_unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("ptlab.job_key"):
        OmegaConf.register_new_resolver("ptlab.job_key", job_key)


def first_of_each_sweep(overrides: Sequence[str]) -> list[str]:
    """``lr=0.1,1 seed=0`` → ``lr=0.1 seed=0``: one concrete job of a sweep, to check before launching."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            out.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
        else:
            out.append(override.input_line)
    return out


@contextlib.contextmanager
def hydra_context(config_dir: Path, job_name: str) -> Iterator[None]:
    """Hydra initialized on ``config_dir`` (with ptlab's resolvers), as ``@hydra.main`` would be."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3", job_name=job_name):
        yield


def compose_config(config_dir: Path, config_name: str, overrides: list[str], with_hydra: bool = False):
    """Compose like ``@hydra.main`` would; turn Hydra's errors into a ConfigError.

    ``with_hydra``: keep the ``hydra`` section (unresolved: resolving its folders makes them).
    """
    from hydra import compose
    from hydra.errors import HydraException, MissingConfigException

    check_group_options(config_dir, overrides)
    with hydra_context(config_dir, config_name):
        try:
            return compose(config_name, overrides=overrides, return_hydra_config=with_hydra)
        except MissingConfigException as err:
            raise _missing_option(err) from None
        except HydraException as err:
            raise _bad_override(err, config_name, overrides, compose) from None


SWEEP_EXTRA = ("optuna", "joblib", "submitit_local", "submitit_slurm")  # Hydra plugins of ptlab[sweep]


def check_group_options(config_dir: Path, overrides: list[str]) -> None:
    """``debug=NAME`` must name a file of configs/debug/: Hydra silently skips a missing *optional* option; and
    each option of a list (``logger=[tensorboard,csv]``) one of its group, which Hydra reports without the key.

    (Options of the other groups, and prefixed overrides such as ``+debug=NAME``, are checked by Hydra itself.)
    """
    import yaml

    defaults = yaml.safe_load((config_dir / "train.yaml").read_text())["defaults"]
    optional = {key.split()[1] for entry in defaults if isinstance(entry, dict) for key in entry
                if key.startswith("optional ")}
    for override in map(Override.parse, overrides):
        group, value = override.key, override.value or ""
        listed = re.fullmatch(r"\[([\w-]+(?:,[\w-]+)*)\]", value)  # logger=[tensorboard,csv]: Hydra's error names no key
        if listed and not override.prefix and (config_dir / group).is_dir():
            value = listed.group(1)
        elif override.prefix or group not in optional or value == "null" or not re.fullmatch(r"[\w-]+(,[\w-]+)*", value):
            continue
        folder = config_dir / group
        options = sorted(path.stem for path in folder.glob("*.yaml"))
        for wanted in value.split(","):
            if wanted not in options:
                raise ConfigError(f"{group}: unknown option {wanted!r}. {did_you_mean(wanted, options)}"
                                  f"Valid options: {', '.join(options)}.")


def _missing_option(err) -> ConfigError:
    group = (err.missing_cfg_file or "").rpartition("/")[0]
    match = re.search(r"Could not find '([^']+)'", str(err))
    wanted = (match.group(1) if match else err.missing_cfg_file or "").rpartition("/")[2]
    options = list(err.options or [])
    if group and options:
        extra = (" Optuna, joblib and submitit come with pip install 'ptlab[sweep]'."
                 if group.startswith("hydra/") and wanted in SWEEP_EXTRA else "")
        return ConfigError(f"{group}: unknown option {wanted!r}. {did_you_mean(wanted, options)}"
                           f"Valid options: {', '.join(options)} (see `ptlab list`).{extra}")
    return ConfigError(str(err).splitlines()[0])


def _bad_override(err, config_name: str, overrides: list[str], compose) -> ConfigError:
    from omegaconf import OmegaConf

    text = f"{err}\n{err.__cause__ or ''}"
    match = re.search(r"Could not override '([^']+)'", text) or re.search(r"Could not append to config. An item is already at '([^']+)'", text)
    if match and "not in struct" in text:
        key = match.group(1)
        parent, _, leaf = key.rpartition(".")
        others = [o for o in overrides if Override.parse(o).key != key]
        try:
            node = OmegaConf.select(compose(config_name, overrides=others), parent) if parent else compose(config_name, overrides=others)
            valid = sorted(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else []
        except Exception:
            valid = []
        hint = f"{did_you_mean(leaf, valid)}Valid keys{' of ' + parent if parent else ''}: {', '.join(valid)}." if valid else ""
        return ConfigError(f"{key}: unknown key. {hint} To add a new key on purpose, write +{key}=VALUE.")
    first = str(err).strip().splitlines()
    return ConfigError(" ".join(line.strip() for line in first[:3]))


def claim_run_dir(config_dir: Path, overrides: list[str]) -> str:
    """Resolve (and so create) ``hydra.run.dir`` for these overrides, as a single run would."""
    from hydra import compose
    from omegaconf import OmegaConf

    with hydra_context(config_dir, "train"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
        return str(Path(OmegaConf.select(cfg, "hydra.run.dir")).resolve())


def compose_for_launch(config_dir: Path, overrides: list[str], multirun: bool):
    """(the config ``ptlab train OVERRIDES`` runs, without ``hydra``; the folder Hydra will make for it, unmade).

    The folder is ``hydra.sweep.dir`` for ``-m``, else ``hydra.run.dir``, with
    its interpolations resolved except ``ptlab.unique_dir`` (which would make
    it, and only adds a suffix); None when it cannot be resolved outside a
    running Hydra job (``${hydra:…}``): Hydra then reports that itself.
    """
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import InterpolationResolutionError

    cfg = compose_config(config_dir, "train", overrides, with_hydra=True)
    template = OmegaConf.to_container(cfg.hydra.sweep if multirun else cfg.hydra.run, resolve=False)["dir"]
    unique = re.fullmatch(r"\$\{ptlab\.unique_dir:(.*)\}", str(template), re.DOTALL)
    try:
        folder = Path(str(OmegaConf.create({"dir": unique.group(1) if unique else template}, parent=cfg).dir))
    except InterpolationResolutionError:
        folder = None
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, folder


def check_can_make_dir(folder: Path, key: str) -> None:
    """Refuse ``folder`` unless it is a folder or can be made one: the nearest part of it that exists must be a
    folder in which a folder can be made (tried with an empty one, removed at once: permissions alone do not tell,
    e.g. for root, /proc or a read-only mount)."""
    import tempfile

    existing = folder.absolute()
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == folder.absolute() else f", so {folder} cannot be made"
        raise ConfigError(f"{key}: {existing} is a file, not a folder{where}; choose another {key}=DIR or move "
                          "the file away")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ptlab-check-", dir=existing))
    except OSError as err:
        raise ConfigError(f"{key}: cannot make {folder}: making a folder in {existing} fails ({err.strerror}); "
                          f"choose a {key}=DIR in a folder you can write to") from None
