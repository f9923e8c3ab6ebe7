"""Cause-of-transmission and type-identification statistics."""

from __future__ import annotations

import pandas as pd

from .frames import Source, apdus, as_frame


def _asdus(df: pd.DataFrame) -> pd.DataFrame:
    a = apdus(df)
    return a[a["type_id"].notna()]


def type_counts(source: Source) -> pd.DataFrame:
    """Per type ID and direction: ``asdus``, ``objects`` (information objects), ``first``
    and ``last`` time. Sorted by type ID."""
    df = as_frame(source)
    a = _asdus(df)
    objects = df[df["type_id"].notna() & df["obj"].notna()]  # also objects without IOA
    keys = ["type_id", "type_name", "direction"]
    g = a.groupby(keys, dropna=False)
    table = pd.DataFrame({"asdus": g.size(), "first": g["time"].min(), "last": g["time"].max()})
    table["objects"] = objects.groupby(keys, dropna=False).size().reindex(
        table.index, fill_value=0)
    table = table.reset_index()
    table["type_id"] = table["type_id"].astype("int64")
    return table[["type_id", "type_name", "direction", "asdus", "objects", "first", "last"]]


def cause_counts(source: Source) -> pd.DataFrame:
    """Per cause of transmission, P/N bit and direction: ``asdus`` and ``objects``."""
    df = as_frame(source)
    a = _asdus(df)
    objects = df[df["type_id"].notna() & df["obj"].notna()]  # also objects without IOA
    keys = ["cot", "cot_name", "negative", "direction"]
    table = pd.DataFrame({"asdus": a.groupby(keys, dropna=False).size()})
    table["objects"] = objects.groupby(keys, dropna=False).size().reindex(
        table.index, fill_value=0)
    table = table.reset_index()
    table["cot"] = table["cot"].astype("int64")
    return table


def type_cause_matrix(source: Source) -> pd.DataFrame:
    """ASDU counts with type names as rows and cause names as columns (0 where none)."""
    a = _asdus(as_frame(source))
    if not len(a):
        return pd.DataFrame()
    m = pd.crosstab(a["type_name"].astype(str), a["cot_name"].astype(str))
    m.index.name, m.columns.name = "type", "cause"
    return m


def apci_counts(source: Source) -> pd.DataFrame:
    """APDUs per format (I/S/U, ``error`` for undecodable octets) and direction; U-frames
    split by function."""
    a = apdus(as_frame(source))
    kind = a["apci"].astype("string").fillna("error")
    kind = kind.where(kind != "U", "U " + a["u_func"].astype("string"))
    table = pd.crosstab(kind, a["direction"].astype("string"))
    table.index.name, table.columns.name = "apdu", "direction"
    return table
