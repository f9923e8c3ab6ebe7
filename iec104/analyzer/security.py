"""Secure authentication (IEC 62351-5 / IEC 60870-5-7) per session: who challenged whom, how
often, and what failed.

:func:`authentication` counts, per TCP connection, the secure authentication messages the
codec decoded (``iec104.codec.security``): challenges (S_CH_NA_1), replies (S_RP_NA_1),
aggressive-mode requests (S_AR_NA_1), session key status requests, statuses and changes
(S_KR/KS/KC_NA_1), and the failures: authentication errors (S_ER_NA_1, by error code) and
session key statuses other than OK. It reads the rows' ``type_id`` and ``value`` columns
only (the codec puts the S_ER_NA_1 error code and the S_KS_NA_1 key status in ``value``), so
it works the same on a capture, a Parquet file or a proxy log. A challenge that got no reply
shows as ``challenges > replies``; a MAC cannot be checked without the keys.
"""

from __future__ import annotations

import pandas as pd

from ..codec import AuthErrorCode, TypeId
from .frames import Source, apdus, as_frame

_T = TypeId
_COUNTED = {"challenges": _T.S_CH_NA_1, "replies": _T.S_RP_NA_1,
            "aggressive": _T.S_AR_NA_1, "key_status_requests": _T.S_KR_NA_1,
            "key_statuses": _T.S_KS_NA_1, "key_changes": _T.S_KC_NA_1,
            "errors": _T.S_ER_NA_1}
SECURE_TYPES = frozenset(range(81, 96)) | {int(_T.S_IT_TC_1)}
"""Type IDs of IEC 62351-5 (41 security statistics, 81-95 authentication messages)."""
KEY_STATUS_OK = 1
"""KST value of a session key status that reports no failure."""
COLUMNS = ["stream", "client", "server", "challenges", "replies", "aggressive",
           "key_status_requests", "key_statuses", "key_changes", "errors", "key_failures",
           "failures", "error_codes", "first", "last"]


def _error_name(code: float) -> str:
    try:
        return AuthErrorCode(int(code)).name
    except ValueError:
        return str(int(code))


def authentication(source: Source) -> pd.DataFrame:
    """One row per TCP connection that carried secure authentication messages.

    Columns: ``stream, client, server`` (``host:port``), the message counts ``challenges,
    replies, aggressive, key_status_requests, key_statuses, key_changes, errors``,
    ``key_failures`` (key statuses other than OK), ``failures`` (errors + key failures),
    ``error_codes`` (``'AUTHENTICATION_FAILED 2, UNKNOWN_USER 1'``), ``first`` and ``last``
    message time. Empty (with these columns) when there are none.
    """
    a = apdus(as_frame(source))
    sec = a[a["type_id"].isin(SECURE_TYPES - {int(_T.S_IT_TC_1)})]
    if not len(sec):
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for stream, g in sec.groupby("stream", sort=True):
        first = g.iloc[0]
        src = f"{first['src']}:{first['sport']}"
        dst = f"{first['dst']}:{first['dport']}"
        client, server = (src, dst) if first["direction"] == "c2s" else (dst, src)
        types = g["type_id"]
        row: dict[str, object] = {"stream": int(stream), "client": client, "server": server}
        for name, type_id in _COUNTED.items():
            row[name] = int((types == type_id).sum())
        status = g.loc[types == _T.S_KS_NA_1, "value"]
        row["key_failures"] = int((status.notna() & (status != KEY_STATUS_OK)).sum())
        row["failures"] = row["errors"] + row["key_failures"]  # type: ignore[operator]
        codes = g.loc[types == _T.S_ER_NA_1, "value"].dropna().map(_error_name)
        row["error_codes"] = ", ".join(f"{k} {v}" for k, v in codes.value_counts().items())
        row["first"], row["last"] = g["time"].min(), g["time"].max()
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
