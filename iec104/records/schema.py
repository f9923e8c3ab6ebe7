"""The Parquet schema of decoded IEC 104 traffic (stable, versioned).

One row per information object, plus one row per APDU that has none (S- and U-frames,
I-frames without objects or that failed to decode), plus one row per capture gap.
APDU-level columns repeat on every object row of the APDU, so a row stands alone.
The version is stored in the file's key-value metadata under ``iec104.schema_version``;
it changes when a column is removed or changes meaning (adding a column does not).

Columns are addressed by name everywhere (never by position): :data:`COLUMN_NAMES` gives
the order of the file, nothing else depends on it.

Every row has a :class:`RowKind` (the ``kind`` column); ``error`` is only human text.
Version 2 added ``kind``; version-1 files are still read, their kind derived from the other
columns (:func:`iec104.records.reader.derive_kind`).

Column reference (also rendered in the README):
"""

from __future__ import annotations

import enum

import pyarrow as pa

SCHEMA_VERSION = "2"
METADATA_KEY = b"iec104.schema_version"


class RowKind(enum.StrEnum):
    """What a row stands for (the ``kind`` column; the values are what files store)."""

    OBJECT = "object"
    """One information object of a decoded ASDU (``obj``/``ioa`` set)."""
    APDU = "apdu"
    """A decoded APDU without object rows: S- and U-frames, I-frames without objects."""
    MALFORMED = "malformed"
    """Octets that are no valid APDU, or an I-frame whose ASDU could not be decoded in full
    (bad ASDU, unknown type ID); ``error`` says why, ``raw`` keeps the octets."""
    GAP = "gap"
    """Octets missing from the capture (no ``apdu``); ``error`` says how many."""
    EVENT = "event"
    """Something that happened to a connection rather than an APDU (no ``apdu``): a proxy
    connection event or rule action, the dissector giving up reassembly of a direction."""


_TS = pa.timestamp("ns", tz="UTC")

COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("time", _TS, ("capture (or proxy receive) time of the frame that completed the APDU, UTC; "
                   "null if the capture's timestamp is outside 1677-2262 (a damaged file)")),
    ("frame", pa.int64(), "capture frame number, 1-based as Wireshark counts (null for proxy logs)"),
    ("stream", pa.int32(), "TCP connection number, 0-based in order of appearance"),
    ("direction", pa.string(), "'c2s' from the TCP client (master) or 's2c' from the server (outstation)"),
    ("src", pa.string(), "source IP address"),
    ("sport", pa.int32(), "source TCP port"),
    ("dst", pa.string(), "destination IP address"),
    ("dport", pa.int32(), "destination TCP port"),
    ("apdu", pa.int64(), "APDU index in the file or log, 0-based (shared by the rows of one APDU)"),
    ("kind", pa.string(), ("what the row stands for: 'object' (an information object), 'apdu' "
                           "(an APDU without objects: S, U, empty I), 'malformed' (octets or an "
                           "ASDU that could not be decoded), 'gap' (capture loss), 'event' "
                           "(a proxy or dissector event on the connection)")),
    ("apci", pa.string(), "'I', 'S' or 'U'; null for malformed octets and gaps"),
    ("u_func", pa.string(), "U-frame function, e.g. 'STARTDT_ACT', 'TESTFR_CON'"),
    ("ssn", pa.int32(), "send sequence number N(S) of I-frames [0, 32767]"),
    ("rsn", pa.int32(), "receive sequence number N(R) of I- and S-frames [0, 32767]"),
    ("type_id", pa.int16(), "ASDU type identification [1, 255]"),
    ("type_name", pa.string(), "type mnemonic, e.g. 'M_ME_NC_1' ('TYPE_<n>' when unknown)"),
    ("sq", pa.bool_(), "SQ bit of the variable structure qualifier"),
    ("num_objects", pa.int16(), "number of information objects [0, 127]"),
    ("cot", pa.int16(), "cause of transmission [0, 63]"),
    ("cot_name", pa.string(), "cause name, e.g. 'SPONTANEOUS', 'ACTIVATION_CONFIRMATION'"),
    ("negative", pa.bool_(), "P/N bit (negative confirmation)"),
    ("test", pa.bool_(), "T bit (test)"),
    ("oa", pa.int16(), "originator address [0, 255]"),
    ("ca", pa.int32(), "common address of ASDU [0, 65535]"),
    ("obj", pa.int16(), "index of the object within its ASDU, null on APDU-only rows"),
    ("ioa", pa.int32(), "information object address [0, 16777215]"),
    ("value", pa.float64(), "numeric value of the object where it has one (see README)"),
    ("value_text", pa.string(), "the value as text (enum names, bitstrings in hex, file fields)"),
    ("iv", pa.bool_(), "quality: invalid"),
    ("nt", pa.bool_(), "quality: not topical"),
    ("sb", pa.bool_(), "quality: substituted"),
    ("bl", pa.bool_(), "quality: blocked"),
    ("ov", pa.bool_(), "quality: overflow (counter: carry CY)"),
    ("ei", pa.bool_(), "protection quality: elapsed time invalid"),
    ("time_tag", _TS, ("CP56Time2a/CP24Time2a of the object as UTC (CP24 completed from "
                       "'time'); CP56 years 0-69 are 2000-2069 and 70-127 are 1970-2027, as "
                       "Wireshark reads them")),
    ("time_tag_iv", pa.bool_(), "IV bit of the time tag"),
    ("select", pa.bool_(), "command S/E bit (True = select)"),
    ("qualifier", pa.int16(), "command/system/parameter qualifier (QU, QL, QOI, QCC RQT, QPM...)"),
    ("raw", pa.binary(), "the APDU octets (or the malformed octets)"),
    ("error", pa.string(), ("human text: why the APDU or octets could not be decoded "
                            "(malformed), how much was lost (gap), what happened (event, "
                            "prefixed 'proxy: ' or 'dissector: '); on an object row, "
                            "'time tag: ...' when its time tag is no calendar date (time_tag "
                            "null) or has a CP56 year above the standard's 99 (time_tag kept)")),
    ("profile", pa.string(), ("field sizes 'COT/CA/IOA' (octets) the I-frame's ASDU was decoded "
                              "with, e.g. '2/2/3'; null on other rows")),
    ("profile_confidence", pa.float64(), ("how sure the per-direction detection of 'profile' "
                                          "was [0, 1]; 0: too little evidence, 2/2/3 assumed; "
                                          "null: given by --profile (or the proxy's setting)")),
]

def _pandas_metadata(schema: pa.Schema) -> bytes:
    """pandas' own metadata asking for nullable dtypes: integer columns become
    ``Int16``/``Int32``/``Int64`` and booleans ``boolean`` (an IOA reads 114, not 114.0, and
    a missing flag is ``<NA>``, not ``None`` in an object column). pyarrow's ``to_pandas``
    and ``pandas.read_parquet`` both honour it, so every loader and a plain
    ``pd.read_parquet`` of our files agree. Only those columns are listed (the others
    convert as they would anyway: timestamps stay ``datetime64[ns, UTC]``, which DuckDB
    and pandas subtract without casts), which keeps each file's footer small."""
    import json

    columns = []
    for field in schema:
        t = field.type
        if pa.types.is_integer(t):
            pandas_type, numpy_type = str(t), f"Int{t.bit_width}"
        elif pa.types.is_boolean(t):
            pandas_type, numpy_type = "bool", "boolean"
        else:
            continue
        columns.append({"name": field.name, "field_name": field.name,
                        "pandas_type": pandas_type, "numpy_type": numpy_type,
                        "metadata": None})
    return json.dumps({"index_columns": [], "column_indexes": [], "columns": columns},
                      separators=(",", ":")).encode()


_FIELDS = [pa.field(name, dtype) for name, dtype, _ in COLUMNS]
SCHEMA = pa.schema(_FIELDS, metadata={METADATA_KEY: SCHEMA_VERSION.encode(),
                                      b"pandas": _pandas_metadata(pa.schema(_FIELDS))})
COLUMN_NAMES = [name for name, _, _ in COLUMNS]


def markdown_table() -> str:
    """The column reference as a Markdown table (used for the README)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {doc} |" for name, dtype, doc in COLUMNS]
    return "\n".join(lines)
