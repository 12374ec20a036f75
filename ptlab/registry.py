"""One small Registry class, used for every kind of buildable thing.

An entry maps a short name (``simple_cnn``) to a callable (a class or a
function). Built-in entries are registered *lazily* by dotted path, so
``ptlab list`` can describe them from their source without importing torch;
the module is imported the first time the entry is built. User code registers
eagerly with the decorator::

    from ptlab.registry import MODELS

    @MODELS.register("my_mlp")
    class MyMLP(nn.Module):
        ...

A config node names its entry with ``name: my_mlp`` or points straight at a
callable with ``_target_: mypkg.models.MyMLP``. Every other key of the node is
checked against the callable's signature (see :mod:`ptlab.config`) and passed
as a keyword argument, together with the *injected* arguments the caller
provides (``num_classes`` from the data, ``params`` for an optimizer, ...).
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ptlab.errors import ConfigError


@dataclass
class Entry:
    """A registered callable, known by dotted path until it is first needed."""

    name: str
    target: str  # "package.module:attribute"
    obj: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        if self.obj is None:
            module_name, _, attr = self.target.partition(":")
            self.obj = getattr(importlib.import_module(module_name), attr)
        return self.obj

    @property
    def where(self) -> str:
        """``file:line`` of the definition, for error messages."""
        if self.obj is not None:
            try:
                return f"{inspect.getsourcefile(self.obj)}:{inspect.getsourcelines(self.obj)[1]}"
            except (OSError, TypeError):
                return self.target
        node, path = _find_definition(self.target)
        return f"{path}:{node.lineno}" if node is not None else self.target


@dataclass
class Registry:
    """Name → callable for one kind (``model``, ``optimizer``, ...).

    ``injected`` lists the keyword arguments ptlab supplies itself when it
    builds an entry; they are not config keys.
    """

    kind: str
    injected: frozenset[str] = frozenset()
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@MODELS.register("simple_cnn")``."""

        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            self._add(Entry(name, f"{obj.__module__}:{obj.__qualname__}", obj))
            return obj

        return add

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attribute"`` without importing it."""
        self._add(Entry(name, target))

    def _add(self, entry: Entry) -> None:
        old = self.entries.get(entry.name)
        if old is not None and old.target != entry.target:
            raise ConfigError(
                f"duplicate {self.kind} name {entry.name!r}: defined at {old.where} "
                f"and again at {entry.where}; rename one of them"
            )
        self.entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str, key: str) -> Callable[..., Any]:
        """The callable registered as ``name``; ``key`` names the config key for errors."""
        if name not in self.entries:
            raise ConfigError(
                f"{key}: unknown {self.kind} {name!r}. {did_you_mean(name, self.names())}"
                f"Valid names: {', '.join(self.names())} (see `ptlab list`)."
            )
        return self.entries[name].load()

    def resolve(self, node: Mapping[str, Any], key: str) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Split a config node into (callable, keyword arguments from the config)."""
        kwargs = {k: v for k, v in node.items() if k not in ("name", "_target_")}
        if "_target_" in node:
            return import_target(str(node["_target_"]), f"{key}._target_"), kwargs
        if "name" not in node:
            raise ConfigError(f"{key}: needs `name` (one of {', '.join(self.names())}) or `_target_`")
        return self.get(str(node["name"]), f"{key}.name"), kwargs

    def build(self, node: Mapping[str, Any], key: str, **injected: Any) -> Any:
        """Call the entry ``node`` names with its config keys and those ``injected`` arguments it accepts.

        ``key`` is the node's config key (``model``, ``objective.metrics``), for error messages.
        """
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
        fn, kwargs = self.resolve(plain, key)
        params = inspect.signature(fn).parameters
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs.update({k: v for k, v in injected.items() if k in params or accepts_any})
        return fn(**kwargs)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, one-line description, config keys) per entry, without importing built-ins."""
        return [(name, *self._describe(self.entries[name])) for name in self.names()]

    def _describe(self, entry: Entry) -> tuple[str, str]:
        if entry.obj is not None:
            fn = entry.obj.__init__ if inspect.isclass(entry.obj) else entry.obj
            doc = inspect.getdoc(entry.obj) or ""
            params = [
                p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                for p in list(inspect.signature(fn).parameters.values())
                if p.name not in self.injected and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            return doc.split("\n")[0], ", ".join(params)
        node, _ = _find_definition(entry.target)
        if node is None:
            return "", ""
        doc = (ast.get_docstring(node) or "").split("\n")[0]
        fn = node
        if isinstance(node, ast.ClassDef):
            fn = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        return doc, ", ".join(_ast_params(fn, self.injected)) if fn is not None else ""


def _ast_params(fn: ast.FunctionDef, injected: Iterable[str]) -> list[str]:
    args = fn.args.args + fn.args.kwonlyargs
    defaults = [None] * (len(fn.args.args) - len(fn.args.defaults)) + list(fn.args.defaults) + list(fn.args.kw_defaults)
    out = []
    for arg, default in zip(args, defaults):
        if arg.arg in ("self", *injected):
            continue
        out.append(arg.arg if default is None else f"{arg.arg}={ast.unparse(default)}")
    return out


def _find_definition(target: str) -> tuple[ast.ClassDef | ast.FunctionDef | None, str]:
    """Find ``module:attr`` in the module's source without importing it."""
    module_name, _, attr = target.partition(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return None, module_name
    path = Path(spec.origin)
    for node in _parsed(path).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == attr:
            return node, str(path)
    return None, str(path)


@functools.lru_cache(maxsize=None)
def _parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once however many of its entries are described."""
    return ast.parse(path.read_text(encoding="utf-8"))


def import_target(dotted: str, key: str) -> Callable[..., Any]:
    """Import ``package.module.attr`` (or ``package.module:attr``)."""
    module_name, sep, attr = dotted.partition(":")
    if not sep:
        module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        hint = (" (a module of your own: install it, or put its folder on PYTHONPATH, e.g. PYTHONPATH=.)"
                if isinstance(err, ModuleNotFoundError) else "")
        raise ConfigError(f"{key}: cannot import {dotted!r} ({err}); give a dotted path such as mypkg.models.MyNet"
                          f"{hint}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {close[0]!r}? " if close else ""

