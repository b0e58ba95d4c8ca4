"""Find model files that ship inside installed wheels, through importlib rather than fixed paths."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from subnet_proxy.engines.base import ModelLoadError


def package_file(module: str, *parts: str, distribution: str) -> Path:
    """The path of ``parts`` inside the installed package ``module`` (pip name ``distribution``).

    Raises ModelLoadError naming the distribution to install when the package is absent, or the
    missing path when the package is there but the file is not (a broken or partial install).
    """
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"package {module!r} is not installed: pip install {distribution}",
                             source=distribution) from exc
    path = Path(str(root.joinpath(*parts)))
    if not path.exists():
        raise ModelLoadError(f"{distribution} is installed but {'/'.join(parts)!r} is missing from it",
                             source=str(path))
    return path
