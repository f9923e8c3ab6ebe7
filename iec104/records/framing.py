"""Framing by column: the codec's :func:`~iec104.codec.apci.apdu_run` without a Python
step per APDU, for the dissector's fast lane (:meth:`iec104.codec.Framer.scan`'s ``run``).

Theory of operation
-------------------
:func:`apdu_ends` answers exactly what the codec's ``apdu_run`` answers: where the valid,
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
   is the candidate at ``e_i`` (mostly candidate ``i + 1``; the others by
   ``searchsorted``), else a sink.
3. *The chain* from the candidate at ``offset`` (none: no run), by peeling: a candidate
   that no candidate left links to (the first excepted) is not on the chain and is
   dropped, round after round; when a round drops none, every candidate left but the
   first has a predecessor left, and following predecessors back (positions decrease)
   ends at the first, so those left are exactly the chain. The false candidates of a
   stream seldom link to each other, so two rounds usually settle it.

Crafted octets can make false candidates many (a 0x68 at every octet is a valid I-frame
header) or chained far (a valid header inside every ASDU, one APDU apart). When there are
more start octets than whole minimal APDUs could start (one per 6 octets), or when
:data:`_PEELS` rounds do not settle it, the window is framed by the codec's loop instead:
such input costs what it costs on the scalar path, never a multiple of it.

:func:`apdu_ends` gives that answer as an int64 array (the fast lane's, never turned into
Python integers).

Cost: numpy's set-up is some tens of microseconds a call, and a run that stops early
(garbage, a resync, a short lane) would pay it for a few APDUs; so the first
:data:`_SCALAR` octets go through the codec's own loop, and arrays are only built when
the run goes on past them. Arrays are built over a window (:data:`_WINDOW` octets, doubling
while the run reaches its end), never over the whole rest of the buffer, so that a call
costs O(its run) and a buffer with many short runs is not scanned once per run. A run
stopped inside a window by an APDU that could have been whole in it (its start at least
255 octets before the window's end) has really stopped; otherwise the next window starts
at the run's last end. Runs broken every few kilobytes still cost several times the
codec's loop (the window's candidates past the break are work for nothing): the dissector
frames a direction whose last flush had malformed runs with the codec's loop.
"""

from __future__ import annotations

import numpy as np

from ..codec.apci import CONTROL_AT, CONTROL_RULES, MAX_LENGTH, MIN_LENGTH, START
from ..codec.apci import apdu_run as scalar_run

__all__ = ["apdu_ends"]

_SCALAR = 1024
"""Octets framed by the codec's loop before arrays are worth their set-up (~30 APDUs)."""
_WINDOW = 1 << 16
"""Octets of the first array window (then doubling while the run goes on)."""
_PEELS = 4
"""Rounds of dropping candidates nothing links to before the codec's loop takes over (a
false chain of k candidates that never joins the run takes k rounds; the common one is 1
long)."""
_SHORTEST = MIN_LENGTH + 2
"""The shortest APDU, its APCI alone (6 octets): start octets closer on average cannot all
be APDU starts."""
_LONGEST = MAX_LENGTH + 2
"""The longest APDU (255 octets)."""

# the codec's table as arrays: the valid length octets as one flag per (first control
# octet << 8 | length octet); mask and value per first control octet
_LENGTH_OK = np.zeros(1 << 16, bool)
for _c1, _rule in enumerate(CONTROL_RULES):
    _LENGTH_OK[(_c1 << 8) + _rule.min_length:(_c1 << 8) + _rule.max_length + 1] = True
_MASK = np.array([rule.mask for rule in CONTROL_RULES], np.uint32)
_VALUE = np.array([rule.value for rule in CONTROL_RULES], np.uint32)


def apdu_ends(data: bytes | bytearray, offset: int, end: int, *, scalar: int = _SCALAR,
              window: int = _WINDOW) -> np.ndarray:
    """The codec's :func:`~iec104.codec.apci.apdu_run`, by column (see the module
    docstring), as an int64 array: the end offset of each whole APDU with a valid APCI that
    follow each other in ``data[offset:end]`` from ``offset`` on. The fast lane's
    ``Framer.scan(runs=True)`` hands a run on as it is, so its ends never become Python
    integers.

    Args:
        scalar: octets framed by the codec's loop first (>= 0; the tests make it 0).
        window: octets of the first array window (>= 1; the tests make it small).
    """
    stop = min(end, offset + scalar)
    first = scalar_run(data, offset, stop)
    pieces = [np.array(first, np.int64)]
    pos = first[-1] if first else offset
    while stop < end and pos + _LONGEST > stop:  # the run may go on past this window
        stop = min(end, pos + window)
        more = _chain(data, pos, stop)
        if more.size:
            pieces.append(more)
            pos = int(more[-1])
        window *= 2
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


_NONE = np.zeros(0, np.int64)


def _chain(data: bytes | bytearray, offset: int, end: int) -> np.ndarray:
    """The run of ``data[offset:end]`` from ``offset`` (int64)."""
    n = end - offset
    last = n - _SHORTEST + 1  # positions where a whole APCI fits
    if last <= 0:
        return _NONE
    v = np.frombuffer(data, np.uint8, n, offset)
    starts = np.flatnonzero(v[:last] == START)
    if not starts.size or starts[0]:
        return _NONE
    if starts.size * _SHORTEST > n:  # more than APDUs could start: crafted octets
        return np.array(scalar_run(data, offset, end), np.int64)
    # the APCI at every start octet: length octet, control word (unaligned uint32 view)
    words = np.ndarray((last,), "<u4", data, offset + CONTROL_AT, (1,))[starts]
    length = v[starts + 1]
    c1 = words & 0xFF
    stops = starts + length + 2
    ok = (_LENGTH_OK[(c1 << 8) | length] & ((words & _MASK[c1]) == _VALUE[c1])
          & (stops <= n))
    cand = starts[ok]
    if not cand.size or cand[0]:
        return _NONE
    m = cand.size
    stops = stops[ok]
    # successors: mostly the next candidate; the others looked up
    link = np.full(m + 1, m, np.intp)  # m: the sink (no successor)
    direct = np.zeros(m, bool)
    direct[:-1] = stops[:-1] == cand[1:]
    link[:m][direct] = np.flatnonzero(direct) + 1
    other = np.flatnonzero(~direct)
    at = np.searchsorted(cand, stops[other])
    found = cand[np.minimum(at, m - 1)] == stops[other]
    link[other[found]] = at[found]
    # peel: a candidate that no candidate left links to (but the first) is not on the
    # chain; once none is, each left but the first has a predecessor left, and following
    # them back leads to the first: those left are the chain
    keep = np.ones(m, bool)
    for _ in range(_PEELS):
        linked = np.zeros(m + 1, bool)
        linked[link[:m][keep]] = True
        linked[0] = True
        left = keep & linked[:m]
        if np.array_equal(left, keep):
            return (stops[keep] + offset).astype(np.int64, copy=False)
        keep = left
    return np.array(scalar_run(data, offset, end), np.int64)  # long false chains: crafted
