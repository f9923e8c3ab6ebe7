"""Shared helpers of the investigations: where a DataFrame comes from, APDU-level views.

Every investigation takes ``source``: a DataFrame of the Parquet schema (``iec104.analyzer.
schema``), a Parquet file, a directory of Parquet files, or a capture file (pcap/pcapng,
decoded by the dissector). :func:`as_frame` does that dispatch once, so a notebook can load
a capture once and pass the DataFrame to every function.

Row order: rows are kept in file order (the order the dissector saw the APDUs); functions
that need time order sort *stably* by ``time`` so simultaneous APDUs keep that order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from ..codec import Cause, TypeId
from ..records.reader import is_parquet, load

Source = Union[pd.DataFrame, str, "os.PathLike[str]"]
"""What every investigation accepts (see the module docstring)."""

PROCESS_COMMANDS = frozenset(range(TypeId.C_SC_NA_1, TypeId.C_BO_NA_1 + 1)) | frozenset(
    range(TypeId.C_SC_TA_1, TypeId.C_BO_TA_1 + 1))
"""Type IDs 45-51 and 58-64: commands in control direction (the ones an operator issues)."""

SBO_COMMANDS = PROCESS_COMMANDS - {TypeId.C_BO_NA_1, TypeId.C_BO_TA_1}
"""Commands with a select/execute (S/E) bit: all process commands but the bitstring ones."""

SYSTEM_COMMANDS = frozenset({TypeId.C_RD_NA_1, TypeId.C_CS_NA_1, TypeId.C_TS_NA_1,
                             TypeId.C_RP_NA_1, TypeId.C_CD_NA_1, TypeId.C_TS_TA_1,
                             TypeId.P_ME_NA_1, TypeId.P_ME_NB_1, TypeId.P_ME_NC_1,
                             TypeId.P_AC_NA_1})
"""Read, clock sync, test, reset process, delay acquisition, parameters (ACTCON, no ACTTERM)."""

AUDITED_COMMANDS = PROCESS_COMMANDS | SYSTEM_COMMANDS - {TypeId.C_RD_NA_1}
"""Type IDs listed by :func:`iec104.analyzer.commands` (interrogations have their own table;
a read command is answered by data with cause REQUEST, not by a confirmation)."""

INTERROGATIONS = frozenset({TypeId.C_IC_NA_1, TypeId.C_CI_NA_1})

PROCESS_INFO_TYPES = frozenset(range(1, 45))
"""Process information in monitor direction (type IDs 1-44: measured values, points, ...)."""

NEGATIVE_CAUSES = frozenset({Cause.UNKNOWN_TYPE, Cause.UNKNOWN_CAUSE, Cause.UNKNOWN_ASDU_ADDRESS,
                             Cause.UNKNOWN_IO_ADDRESS})
"""Causes 44-47: the outstation refuses what it was sent."""

REQUEST_CAUSES = frozenset({Cause.ACTIVATION, Cause.DEACTIVATION})
CONFIRM_CAUSES = frozenset({Cause.ACTIVATION_CONFIRMATION, Cause.DEACTIVATION_CONFIRMATION})

QUALITY_FLAGS = ("iv", "nt", "sb", "bl", "ov", "ei")


def read_capture(path: str | os.PathLike[str], *, ports: Iterable[int] | None = None,
                 heuristic: bool = True) -> pd.DataFrame:
    """Decode a pcap/pcapng file into a DataFrame of the schema, in memory, with the
    dissector (:func:`iec104.dissector.dissect_table`).

    Args:
        ports: TCP ports of IEC 104 servers (default 2404).
        heuristic: also decode connections on other ports whose bytes look like IEC 104.

    Raises:
        CaptureError: the file is not a capture.
    """
    from ..dissector import dissect_table

    return dissect_table(path, ports, heuristic=heuristic).to_pandas()


def as_frame(source: Source) -> pd.DataFrame:
    """The DataFrame behind ``source`` (a DataFrame is returned as it is, not copied)."""
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if is_parquet(path):
        return load(path)
    return read_capture(path)


def apdus(df: pd.DataFrame) -> pd.DataFrame:
    """One row per APDU (the first row of each; gap rows dropped), in file order.

    Consecutive rows with the same ``apdu`` index are one APDU, so files loaded together
    whose indexes restart still split correctly.
    """
    apdu = df["apdu"]
    # NA != x is NA in nullable columns: the first row (nothing before it) starts an APDU
    first = apdu.notna() & (apdu != apdu.shift()).fillna(True).astype(bool)
    return df[first]


def gaps(df: pd.DataFrame) -> pd.DataFrame:
    """The capture-gap rows (kind ``gap``)."""
    return df[df["kind"] == "gap"]


def by_time(df: pd.DataFrame) -> pd.DataFrame:
    """Stable sort by capture time (file order among equal times)."""
    return df.sort_values("time", kind="stable")


def ns(series: pd.Series) -> np.ndarray:
    """A datetime column as int64 nanoseconds since the epoch (NaT as the int64 minimum)."""
    values = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None \
        else series
    return values.to_numpy(dtype="datetime64[ns]").astype("int64")


def endpoint(ip: Any, port: Any) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6) as Wireshark's conversations show it."""
    if ip is None or (isinstance(ip, float) and np.isnan(ip)) or ip is pd.NA:
        return "?"
    ip = str(ip)
    return f"[{ip}]:{int(port)}" if ":" in ip else f"{ip}:{int(port)}"


def stream_endpoints(df: pd.DataFrame) -> pd.DataFrame:
    """Per stream: ``client`` and ``server`` as ``ip:port`` plus their IPs, from any row."""
    rows = df[df["direction"].notna()].drop_duplicates(["stream", "direction"])
    out: dict[int, dict[str, Any]] = {}
    for r in rows.itertuples(index=False):
        d = out.setdefault(int(r.stream), {})
        if r.direction == "c2s":
            d.update(client=endpoint(r.src, r.sport), server=endpoint(r.dst, r.dport),
                     client_ip=r.src, server_ip=r.dst)
        else:
            d.update(client=endpoint(r.dst, r.dport), server=endpoint(r.src, r.sport),
                     client_ip=r.dst, server_ip=r.src)
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "stream"
    return table


def empty(columns: dict[str, str]) -> pd.DataFrame:
    """An empty table with typed columns (so callers can filter it like a full one)."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def opt_int(value: Any) -> int | None:
    """An int from a possibly-null cell."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)


def opt_bool(value: Any) -> bool | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return bool(value)


def auto_freq(times: pd.Series, bins: int = 300) -> str:
    """A round bin width giving at most about ``bins`` bins over the span of ``times``."""
    span = (times.max() - times.min()).total_seconds() if len(times) else 0.0
    # sub-second bins too: generated or lab captures often last a fraction of a second
    for step, text in ((0.001, "1ms"), (0.01, "10ms"), (0.1, "100ms"), (1, "1s"), (5, "5s"), (10, "10s"), (30, "30s"), (60, "1min"),
                       (300, "5min"), (900, "15min"), (3600, "1h"), (6 * 3600, "6h"),
                       (86400, "1D")):
        if span / step <= bins:
            return text
    return "7D"
