"""Package attributes imported on first use (PEP 562), so that ``comemory --version`` and
``--help`` answer without loading PyTorch, OpenCV or scikit-learn (seconds on a busy
machine) and a Ctrl-C while they load is caught by the command line."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name in ``homes`` ({name:
    module}) from its module when first asked for, and keeps it."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
