"""What a run records about what it measured: package versions and the commit of agno_storage."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def revision() -> str:
    """The commit the package was measured at, with "+changes" if agno_storage/ differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agno_storage"], cwd=ROOT, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        # Run from an export of a commit (see docs/benchmarks.md): it says which.
        return os.environ.get("AGNO_STORAGE_REVISION", "unknown")
    return head.stdout.strip() + (" +uncommitted changes in agno_storage/" if dirty.stdout.strip() else "")
