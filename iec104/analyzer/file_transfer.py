"""Files transferred in a capture, rebuilt from its rows (F_* type IDs 120-127).

Every APDU row keeps its octets in ``raw``; the I-frames of file types are decoded again
with the codec and fed, stream by stream in file order, to the codec's passive
:class:`~iec104.codec.files.FileReassembler`, which applies the receiver's rules (section
checksums, repeated sections, file checksum, the receiver's file acknowledgement). So a
disturbance record a SCADA master downloaded can be recovered from a pcap, with the same
verdict the master reached.
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

from ..codec import ASDU, DEFAULT_PROFILE, DecodeError, IFrame, Profile, decode_apdu, decode_asdu
from ..codec.files import FILE_TYPES, FileReassembler, RebuiltFile
from .frames import Source, apdus, as_frame, empty

COLUMNS = {"stream": "int64", "direction": "string", "ca": "int64", "ioa": "int64",
           "name": "int64", "bytes": "object", "size": "int64", "length": "Int64",
           "checksum_ok": "bool", "complete": "bool", "status": "string",
           "first_time": "datetime64[ns, UTC]", "last_time": "datetime64[ns, UTC]",
           "first_frame": "Int64", "last_frame": "Int64"}


def files(source: Source, *, profile: Profile = DEFAULT_PROFILE) -> pd.DataFrame:
    """One row per file transfer seen (read or written), in order of its start.

    Columns: ``stream``; ``direction`` of the file data ('s2c': read from the outstation,
    'c2s': written to it); ``ca``, ``ioa``, ``name`` (NOF); ``bytes`` (the file, or the
    sections that arrived whole when it is incomplete); ``size`` (len of ``bytes``);
    ``length`` (LOF announced); ``checksum_ok`` (complete, and the file checksum and
    length agree); ``complete``; ``status`` ('complete', 'rejected' by the receiver,
    'checksum', 'refused', 'aborted', 'incomplete'); ``first_time``/``last_time`` and
    ``first_frame``/``last_frame`` (the file ready and the last ASDU of the transfer).

    Args:
        profile: field sizes the ASDUs were encoded with (IEC 104: the default).
    """
    df = as_frame(source)
    rows = apdus(df)
    rows = rows[(rows["apci"] == "I") & rows["type_id"].isin(FILE_TYPES).fillna(False)
                & rows["raw"].notna()]
    out: list[dict[str, Any]] = []
    for stream, group in rows.groupby("stream", sort=False):
        passive = FileReassembler()
        for row in group.itertuples(index=False):
            asdu = _decode(row.raw, profile)
            if asdu is None:
                continue
            here = (row.time, row.frame, row.direction)
            out += [_row(int(stream), r) for r in passive.feed(asdu, here)]
        out += [_row(int(stream), r) for r in passive.close()]
    if not out:
        return empty(COLUMNS)
    table = pd.DataFrame(out, columns=list(COLUMNS))
    table = table.sort_values(["first_time", "stream"], kind="stable").reset_index(drop=True)
    return table.astype({k: v for k, v in COLUMNS.items()
                         if k not in ("bytes", "first_time", "last_time")})


def _decode(raw: bytes, profile: Profile) -> ASDU | None:
    try:
        frame = decode_apdu(bytes(raw))
        if not isinstance(frame, IFrame):
            return None
        asdu = decode_asdu(frame.asdu, profile)
    except DecodeError:
        return None  # the row's ``error`` column says why
    return asdu if isinstance(asdu, ASDU) else None


def _row(stream: int, r: RebuiltFile) -> dict[str, Any]:
    first_time, first_frame, first_direction = cast("tuple[Any, Any, str]", r.first)
    last_time, last_frame, _ = cast("tuple[Any, Any, str]", r.last)
    return {"stream": stream, "direction": first_direction, "ca": r.common_address,
            "ioa": r.io_address, "name": r.name, "bytes": r.data, "size": len(r.data),
            "length": r.length, "checksum_ok": r.checksum_ok, "complete": r.complete,
            "status": r.status, "first_time": first_time, "last_time": last_time,
            "first_frame": first_frame, "last_frame": last_frame}
