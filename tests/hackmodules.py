"""Import a script of hack/ (the generators, the release) as a module, for the tests that check what it makes.

hack/ is not a package: its scripts run as ``python hack/NAME.py``. Registering the module under its name lets
dataclasses and the scripts' own imports of each other resolve.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HACK = Path(__file__).resolve().parents[1] / "hack"


def load(name: str) -> ModuleType:
    """hack/<name>.py as the module ``name`` (loaded once per session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HACK / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
