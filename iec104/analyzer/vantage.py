"""Two vantage points of the same traffic compared: ASDUs dropped, injected or rewritten.

Theory of operation
-------------------
A proxy log and a capture taken elsewhere on the path (or two captures, one on each side
of a gateway) should carry the same ASDUs in the same order per direction. The APCI does
not have to match: a proxy that drops a frame renumbers N(S)/N(R), and every hop has its
own TCP connection. So each side is reduced to its sequence of *ASDU octets* (the I-frames'
octets after the 6-octet APCI) per direction, in time order, and the two sequences are
aligned with :class:`difflib.SequenceMatcher` (longest matching blocks, so one missing
ASDU does not shift every later comparison):

* present in ``a`` only: ``dropped`` (sent at ``a``'s vantage point, never seen at ``b``'s);
* present in ``b`` only: ``injected`` (seen at ``b``, never sent at ``a``: spoofed);
* a replaced run pairs ASDUs one to one: ``rewritten`` when the type and common address
  agree (a value or cause changed on the way), else ``dropped`` + ``injected``.

Direction is the same on both sides (``c2s``: from the TCP client, the master). Undecodable
rows, gaps and events are left out (they are not ASDUs).
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd

from .frames import Source, apdus, as_frame, by_time, empty

__all__ = ["DIFF_COLUMNS", "vantage_diff"]

DIFF_COLUMNS = {"direction": "str", "kind": "str", "time_a": "datetime64[ns, UTC]",
                "time_b": "datetime64[ns, UTC]", "frame_a": "Int64", "frame_b": "Int64",
                "type_name": "str", "ca": "Int64", "asdu_a": "str", "asdu_b": "str",
                "detail": "str"}


def _asdus(source: Source) -> pd.DataFrame:
    heads = by_time(apdus(as_frame(source)))
    heads = heads[(heads["apci"] == "I") & heads["raw"].notna()].copy()
    heads["asdu"] = heads["raw"].map(lambda raw: bytes(raw)[6:])
    return heads


def _row(direction: str, kind: str, a: Any, b: Any, detail: str) -> dict[str, Any]:
    some = a if a is not None else b
    return {"direction": direction, "kind": kind,
            "time_a": None if a is None else a["time"], "time_b": None if b is None else
            b["time"], "frame_a": None if a is None else a["frame"],
            "frame_b": None if b is None else b["frame"], "type_name": some["type_name"],
            "ca": some["ca"], "asdu_a": None if a is None else a["asdu"].hex(),
            "asdu_b": None if b is None else b["asdu"].hex(), "detail": detail}


def vantage_diff(a: Source, b: Source) -> pd.DataFrame:
    """What differs between the ASDUs seen at vantage point ``a`` and at ``b``.

    Args:
        a, b: DataFrames, Parquet files/directories (a proxy log) or captures.

    Returns:
        One row per difference, per direction in ``a``'s order: ``direction, kind``
        (``dropped``, ``injected``, ``rewritten``), ``time_a, time_b, frame_a, frame_b``
        (null on the side without it), ``type_name, ca``, the ASDU octets ``asdu_a``/
        ``asdu_b`` as hex, ``detail``. Empty when both saw the same ASDUs.
    """
    left, right = _asdus(a), _asdus(b)
    found: list[dict[str, Any]] = []
    for direction in ("c2s", "s2c"):
        xs = [r for _, r in left[left["direction"] == direction].iterrows()]
        ys = [r for _, r in right[right["direction"] == direction].iterrows()]
        matcher = difflib.SequenceMatcher(None, [x["asdu"] for x in xs],
                                          [y["asdu"] for y in ys], autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            olds, news = xs[i1:i2], ys[j1:j2]
            paired = min(len(olds), len(news)) if op == "replace" else 0
            for x, y in zip(olds[:paired], news[:paired], strict=True):
                if (x["type_id"], x["ca"]) == (y["type_id"], y["ca"]):
                    found.append(_row(direction, "rewritten", x, y,
                                      f"{x['type_name']} CA {x['ca']} changed on the way"))
                else:
                    found.append(_row(direction, "dropped", x, None, "not seen at b"))
                    found.append(_row(direction, "injected", None, y, "not sent at a"))
            found += [_row(direction, "dropped", x, None, "sent at a, not seen at b")
                      for x in olds[paired:]]
            found += [_row(direction, "injected", None, y, "seen at b, never sent at a")
                      for y in news[paired:]]
    if not found:
        return empty(DIFF_COLUMNS)
    table = pd.DataFrame(found)
    for name in ("time_a", "time_b"):
        table[name] = pd.to_datetime(table[name], utc=True)
    for name in ("frame_a", "frame_b", "ca"):
        table[name] = table[name].astype("Int64")
    return table
