"""Framing by column: the codec's :func:`~iec104.codec.apci.apdu_run` without a Python
step per APDU, for the dissector's fast lane (:meth:`iec104.codec.Framer.scan`'s ``run``).

Theory of operation
-------------------
:func:`apdu_run` answers exactly what the codec's ``apdu_run`` answers: where the valid,
whole APDUs that follow each other from ``offset`` end, up to the first octets that are
none (or not whole before ``end``). It never states an APCI rule of its own: it applies
the codec's table (:data:`~iec104.codec.apci.CONTROL_RULES`: per first control octet, the
valid length octets and a mask/value over the control word) to arrays.

1. *Candidates*: every position ``p`` of the window whose octet is the start octet and
   whose six APCI octets pass the table (length octet and control word gathered at all
   such positions at once, the rule gathered by the first control octet), with the APDU
   whole in the window. A 0x68 inside an ASDU may pass too; it is harmless unless the
   chain lands on it, which is what the scalar loop would do as well.
2. *Links*: candidate ``i``'s APDU ends at ``e_i = p_i + 2 + length_i``; its successor
   is the candidate at ``e_i`` (``searchsorted``), else a sink.
3. *The chain* from the candidate at ``offset`` (none: no run), by pointer doubling: with
   ``J_1`` the successor table and ``path`` the nodes at steps ``0..2**r - 1``, the nodes
   at steps ``2**r..2**(r+1) - 1`` are ``J_{2**r}[path]``, and ``J_{2**(r+1)} =
   J_{2**r}[J_{2**r}]``; ``ceil(log2(run + 1))`` rounds of O(candidates) each, until the
   path reaches the sink.

Cost: numpy's set-up is some tens of microseconds a call, and a run that stops early
(garbage, a resync, a short lane) would pay it for a few APDUs; so the first
:data:`_SCALAR` octets go through the codec's own loop, and arrays are only built when
the run goes on past them. Arrays are built over a window (:data:`_WINDOW` octets, doubling
while the run reaches its end), never over the whole rest of the buffer, so that a call
costs O(its run) and a buffer with many short runs is not scanned once per run. A run
stopped inside a window by an APDU that could have been whole in it (its start at least
255 octets before the window's end) has really stopped; otherwise the next window starts
at the run's last end.
"""

from __future__ import annotations

import numpy as np

from ..codec.apci import CONTROL_AT, CONTROL_RULES, MAX_LENGTH, START
from ..codec.apci import apdu_run as scalar_run

__all__ = ["apdu_run"]

_SCALAR = 1024
"""Octets framed by the codec's loop before arrays are worth their set-up (~25 APDUs)."""
_WINDOW = 1 << 16
"""Octets of the first array window (then doubling while the run goes on)."""
_LONGEST = MAX_LENGTH + 2
"""The longest APDU (255 octets)."""

# the codec's table as arrays, indexed by the first control octet
_LO, _HI, _MASK, _VALUE = (np.array(column, np.int64) for column in zip(*CONTROL_RULES))
_MASK32 = _MASK.astype(np.uint32)
_VALUE32 = _VALUE.astype(np.uint32)


def apdu_run(data: bytes | bytearray, offset: int, end: int, *, scalar: int = _SCALAR,
             window: int = _WINDOW) -> list[int]:
    """The codec's :func:`~iec104.codec.apci.apdu_run`, by column (see the module
    docstring): the end offset of each whole APDU with a valid APCI that follow each other
    in ``data[offset:end]`` from ``offset`` on.

    Args:
        scalar: octets framed by the codec's loop first (>= 0; the tests make it 0).
        window: octets of the first array window (>= 1; the tests make it small).
    """
    stop = min(end, offset + scalar)
    out = scalar_run(data, offset, stop)
    pos = out[-1] if out else offset
    while stop < end and pos + _LONGEST > stop:  # the run may go on past this window
        stop = min(end, pos + window)
        more = _chain(data, pos, stop)
        if more:
            out += more
            pos = more[-1]
        window *= 2
    return out


def _chain(data: bytes | bytearray, offset: int, end: int) -> list[int]:
    """The run of ``data[offset:end]`` from ``offset``."""
    n = end - offset
    if n < 6:
        return []
    v = np.frombuffer(data, np.uint8, n, offset)
    starts = np.flatnonzero(v[:n - 5] == START)
    if not starts.size or starts[0]:
        return []
    # the APCI at every start octet: length octet, control word (unaligned uint32 view)
    words = np.ndarray((n - 5,), "<u4", data, offset + CONTROL_AT, (1,))[starts]
    length = v[starts + 1].astype(np.int64)
    c1 = words & 0xFF
    ok = ((length >= _LO[c1]) & (length <= _HI[c1]) & ((words & _MASK32[c1]) == _VALUE32[c1])
          & (starts + length + 2 <= n))
    cand = starts[ok]
    if not cand.size or cand[0]:
        return []
    stops = cand + length[ok] + 2
    m = cand.size
    at = np.searchsorted(cand, stops)
    link = np.full(m + 1, m, np.int64)  # successor of each candidate; m: the sink
    hit = at < m
    hit[hit] = cand[at[hit]] == stops[hit]
    link[:m][hit] = at[hit]
    path = np.zeros(1, np.int64)
    while path[-1] != m:
        path = np.concatenate((path, link[path]))
        link = link[link]
    path = path[:np.searchsorted(path, m)]  # increasing until the sink
    return (stops[path] + offset).tolist()  # type: ignore[no-any-return]
