"""Helpers shared by the test modules."""

from __future__ import annotations

import os

import pytest


def require(available: bool, reason: str, env: str) -> None:
    """Skip the calling test when a tool is missing, or fail when ``env`` demands it.

    CI sets ``env`` (for example ``AGNO_STORAGE_REQUIRE_GO=1``) so that a
    missing toolchain fails the run instead of hiding behind a skip.
    """
    if available:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} ({env}=1 forbids skipping)")
    pytest.skip(reason)
