"""tshark for the tests: :mod:`iec104.verify.tshark` (the oracle ``iec104 verify`` uses), plus
:func:`ensure_tshark`, which skips a test when tshark is missing (and fails it in CI)."""

from __future__ import annotations

import os

import pytest

from iec104.verify.tshark import (
    IEC104_PORT,
    MISSING,
    TSHARK_NO_SEQ_ANALYSIS,
    TsharkError,
    find_tshark,
    tshark_apdus,
    tshark_command,
    tshark_version,
)

__all__ = ["IEC104_PORT", "TSHARK_NO_SEQ_ANALYSIS", "TsharkError", "ensure_tshark", "find_tshark",
           "tshark_apdus", "tshark_command", "tshark_version"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def ensure_tshark() -> str:
    """Return the path of tshark; skip the test if it is missing, fail instead when CI is true."""
    path = find_tshark()
    if path is None:
        if _in_ci():
            pytest.fail(MISSING + " -- required in CI", pytrace=False)
        pytest.skip(MISSING)
    return path
