"""ptlab: a config-driven PyTorch training toolkit.

The API is imported lazily so that ``import ptlab`` (and ``ptlab list``) stay fast.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["compose", "build", "train", "evaluate", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("compose", "build", "train", "evaluate"):
        from ptlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'ptlab' has no attribute {name!r}")
