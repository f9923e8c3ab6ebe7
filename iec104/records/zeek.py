"""Records -> Zeek-style logs with spicy-iec104's log names and fields (``iec104 export --zeek``).

Theory of operation
-------------------
Malcolm and other Zeek-based SOC pipelines read IEC 104 through the Spicy analyzer
zeek-iec104 (parsitects/zeek-iec104, "spicy-iec104"). It writes one log per ASDU type
(``iec104-M_ME_NC_1``, ``iec104-C_SC_NA_1``, ...: one row per information object), plus
``iec104-apci_i``/``-apci_s``/``-apci_u`` (one row per APDU), ``iec104-asdu-ident`` (one
row per ASDU: its data unit identifier) and ``iec104-unk`` (types it does not decode). Every
row carries Zeek's connection keys: ``ts``, ``uid``, ``id.orig_h``/``id.orig_p`` (the TCP
client) and ``id.resp_h``/``id.resp_p``, ``is_orig`` (sent by the client) and ``apdu`` (the
APDU's number within its connection, from 1). Nested records are flattened with dots, as
Zeek's writers do (``io.siq.spi``, ``io.tt.minute``, ``ident.cot``).

:class:`ZeekWriter` takes record batches of our schema and keeps one row per APDU (the row
with ``obj`` 0, or the only row); the object fields come from decoding the row's ``raw``
octets with :mod:`iec104.codec` again, so every field of spicy-iec104's records (raw time
tag fields, command qualifiers, QPM bits) is there with the codec as the only decoder.
Rows that are not APDUs (gaps, malformed octets, connection events) have no place in these
logs (Zeek would put such things in ``weird.log``) and are counted in
:attr:`ZeekWriter.skipped`.

Values follow spicy-iec104's field types: normalized (``nva``) and scaled (``sva``) values
and counters (``bcr``) are ``count``, i.e. the wire word as an unsigned number (-1 is
65535); ``r32`` is a ``double``; ``type_id`` and ``cot`` are enums written by name
(``M_ME_NC_1``, ``Spont``); booleans are ``T``/``F``. TSV logs have Zeek's ``#separator``,
``#fields`` and ``#types`` header lines; JSON logs (``json=True``) are one object per line
with ISO 8601 ``ts`` (spicy-iec104's JSON setting). A log file appears under its final name
only when complete (it is written under a hidden name and renamed at :meth:`close`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..codec import (
    ASDU,
    DEFAULT_PROFILE,
    DecodeError,
    InformationObject,
    Profile,
    Time,
    TypeId,
    decode_apdu,
    decode_asdu,
    float32_text,
)
from ..codec.asdu import decode_header

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["COT_NAMES", "IO_FIELDS", "ZeekWriter", "type_enum"]

T = TypeId

COT_NAMES: dict[int, str] = {
    0: "Cot_Unused", 1: "Percyc", 2: "Back", 3: "Spont", 4: "Init", 5: "Req", 6: "Act",
    7: "Actcon", 8: "Deact", 9: "Deactcon", 10: "ActTerm", 11: "Retrem", 12: "Retloc",
    13: "File", 14: "Auth", 15: "Seskey", 16: "Usrkey", 20: "Inrogen",
    **{20 + g: f"Inro{g}" for g in range(1, 17)}, 37: "Reqcogen",
    **{37 + g: f"Reqco{g}" for g in range(1, 5)}, 44: "UnkType", 45: "UnkCause",
    46: "UnkAsduAddr", 47: "UnkObjAddr"}
"""spicy-iec104's IEC104CoT enum names (others: ``Cot_<n>``)."""


def cot_enum(cause: int) -> str:
    return COT_NAMES.get(int(cause), f"Cot_{int(cause)}")


def type_enum(type_id: int) -> str:
    """spicy-iec104's IEC104TypeID name: the standard mnemonic, ``ASDU_TYPE_<n>`` for ids
    without one, ``ASDU_TYPEUNDEF`` for 0."""
    if type_id == 0:
        return "ASDU_TYPEUNDEF"
    member = T._value2member_map_.get(type_id)
    return member.name if member is not None else f"ASDU_TYPE_{type_id}"


# -- the fields of each information object, by element ------------------------------------
# A part is (columns, getter): columns are (name, Zeek type) under "io.", the getter returns
# their values for one InformationObject.

Column = tuple[str, str]
Part = tuple[tuple[Column, ...], Callable[[InformationObject], tuple[Any, ...]]]


def _bits(prefix: str) -> tuple[Column, ...]:
    return tuple((f"{prefix}.{n}", "bool") for n in ("bl", "sb", "nt", "iv"))


def _qbits(o: InformationObject) -> tuple[bool, ...]:
    q = o.quality
    return (q.blocked, q.substituted, q.not_topical, q.invalid)  # type: ignore[union-attr]


def _single(name: str, ztype: str, get: Callable[[InformationObject], Any]) -> Part:
    return ((name, ztype),), lambda o: (get(o),)


def _u16(value: int) -> int:
    return value & 0xFFFF


OBJ_ADDR = _single("obj_addr", "count", lambda o: o.address)
SIQ: Part = ((("siq.spi", "bool"), *_bits("siq")), lambda o: (bool(o.value), *_qbits(o)))
DIQ: Part = ((("diq.dpi", "count"), *_bits("diq")), lambda o: (int(o.value), *_qbits(o)))
QDS: Part = ((("qds.ov", "bool"), *_bits("qds")),
             lambda o: (o.quality.overflow, *_qbits(o)))  # type: ignore[union-attr]
QDP: Part = ((("qdp.ei", "bool"), *_bits("qdp")),
             lambda o: (o.quality.time_invalid, *_qbits(o)))  # type: ignore[union-attr]
VTI: Part = ((("vti.val", "int"), ("vti.ts", "bool")),
             lambda o: (o.value.value, o.value.transient))
BSI = _single("bsi", "count", lambda o: int.from_bytes(o.value.value, "little"))
NVA = _single("nva", "count", lambda o: _u16(round(o.value.value * 32768)))
SVA = _single("sva", "count", lambda o: _u16(o.value.value))
R32 = _single("r32", "double", lambda o: o.value.value)
BCR: Part = ((("bcr", "count"), ("qd.sq", "count"), ("qd.cy", "bool"), ("qd.ca", "bool"),
              ("qd.iv", "bool")),
             lambda o: (o.value.value & 0xFFFFFFFF, o.value.sequence, o.value.overflow,
                        o.value.adjusted, o.value.invalid))
SCD = _single("scd", "count", lambda o: o.value.status | o.value.change << 16)
SCO: Part = ((("sco.scs", "bool"), ("sco.qu", "count"), ("sco.se", "bool")),
             lambda o: (bool(o.value), o.qualifier, o.select))
DCO: Part = ((("dco.dcs", "count"), ("dco.qu", "count"), ("dco.se", "bool")),
             lambda o: (int(o.value), o.qualifier, o.select))
RCO: Part = ((("rco.rcs", "count"), ("rco.qu", "count"), ("rco.se", "bool")),
             lambda o: (int(o.value), o.qualifier, o.select))
QOS: Part = ((("qos.ql", "count"), ("qos.se", "bool")), lambda o: (o.qualifier, o.select))
QPM: Part = ((("qpm.kpa", "count"), ("qpm.pop", "bool"), ("qpm.lpc", "bool")),
             lambda o: (o.qualifier & 0x3F, bool(o.qualifier & 0x80),  # type: ignore[operator]
                        bool(o.qualifier & 0x40)))  # type: ignore[operator]
COI: Part = ((("coi", "count"), ("lpc", "bool")),
             lambda o: (o.value.cause, o.value.param_change))
QOI = _single("qoi", "count", lambda o: o.qualifier)
QRP = _single("qrp", "count", lambda o: o.qualifier)
QCC: Part = ((("qcc.rqt", "count"), ("qcc.frz", "bool")),  # spicy-iec104: FRZ as a bool
             lambda o: (o.qualifier, bool(o.value)))
TSC = _single("tsc", "count", lambda o: o.value)
RAW_DATA = _single("raw_data", "count", lambda o: None)  # C_RD_NA_1 carries no element
SEP: Part = ((("sep.es", "count"), ("sep.ei", "bool"), *_bits("sep")),
             lambda o: (int(o.value.state), o.quality.time_invalid,  # type: ignore[union-attr]
                        *_qbits(o)))
SEP_START: Part = (tuple((f"sep.{n}", "bool") for n in ("gs", "sl1", "sl2", "sl3", "sie",
                                                          "srd")),
                   lambda o: (o.value.general, o.value.l1, o.value.l2, o.value.l3,
                              o.value.ie, o.value.reverse))
OCI: Part = (tuple((f"oci.{n}", "bool") for n in ("gc", "cl1", "cl2", "cl3")),
             lambda o: (o.value.general, o.value.l1, o.value.l2, o.value.l3))
ELAPSED = _single("ms", "count", lambda o: o.value.elapsed_time)
DURATION = _single("ms", "count", lambda o: o.value.duration_time)
OPERATING = _single("ms", "count", lambda o: o.value.operating_time)


def _tt_fields(t: Time | None, long: bool) -> tuple[Any, ...]:
    if t is None:
        return (None,) * (9 if long else 3)
    short = (t.milliseconds, t.minutes, t.invalid)
    if not long:
        return short
    return short + (t.hours, t.summer_time, t.day_of_month, t.day_of_week, t.months, t.years)


TT24: Part = ((("tt.ms", "count"), ("tt.minute", "count"), ("tt.iv", "bool")),
              lambda o: _tt_fields(o.time, False))
TT56: Part = (TT24[0] + (("tt.hour", "count"), ("tt.su", "bool"), ("tt.day", "count"),
                         ("tt.dow", "count"), ("tt.month", "count"), ("tt.year", "count")),
              lambda o: _tt_fields(o.time, True))

IO_FIELDS: dict[TypeId, tuple[Part, ...]] = {
    T.M_SP_NA_1: (SIQ,), T.M_SP_TA_1: (SIQ, TT24), T.M_SP_TB_1: (SIQ, TT56),
    T.M_DP_NA_1: (DIQ,), T.M_DP_TA_1: (DIQ, TT24), T.M_DP_TB_1: (DIQ, TT56),
    T.M_ST_NA_1: (VTI, QDS), T.M_ST_TA_1: (VTI, QDS, TT24), T.M_ST_TB_1: (VTI, QDS, TT56),
    T.M_BO_NA_1: (BSI, QDS), T.M_BO_TA_1: (BSI, QDS, TT24), T.M_BO_TB_1: (BSI, QDS, TT56),
    T.M_ME_NA_1: (NVA, QDS), T.M_ME_TA_1: (NVA, QDS, TT24), T.M_ME_TD_1: (NVA, QDS, TT56),
    T.M_ME_NB_1: (SVA, QDS), T.M_ME_TB_1: (SVA, QDS, TT24), T.M_ME_TE_1: (SVA, QDS, TT56),
    T.M_ME_NC_1: (R32, QDS), T.M_ME_TC_1: (R32, QDS, TT24), T.M_ME_TF_1: (R32, QDS, TT56),
    T.M_IT_NA_1: (BCR,), T.M_IT_TA_1: (BCR, TT24), T.M_IT_TB_1: (BCR, TT56),
    T.M_PS_NA_1: (SCD, QDS), T.M_ME_ND_1: (NVA,),
    T.M_EP_TD_1: (SEP, ELAPSED, TT56), T.M_EP_TE_1: (SEP_START, QDP, DURATION, TT56),
    T.M_EP_TF_1: (OCI, QDP, OPERATING, TT56),
    T.C_SC_NA_1: (SCO,), T.C_DC_NA_1: (DCO,), T.C_RC_NA_1: (RCO,),
    T.C_SE_NA_1: (NVA, QOS), T.C_SE_NB_1: (SVA, QOS), T.C_SE_NC_1: (R32, QOS),
    T.C_BO_NA_1: (BSI,),
    T.C_SC_TA_1: (SCO, TT56), T.C_DC_TA_1: (DCO, TT56), T.C_RC_TA_1: (RCO, TT56),
    T.C_SE_TA_1: (NVA, QOS, TT56), T.C_SE_TB_1: (SVA, QOS, TT56),
    T.C_SE_TC_1: (R32, QOS, TT56), T.C_BO_TA_1: (BSI, TT56),
    T.M_EI_NA_1: (COI,), T.C_IC_NA_1: (QOI,), T.C_CI_NA_1: (QCC,), T.C_RD_NA_1: (RAW_DATA,),
    T.C_CS_NA_1: (TT56,), T.C_RP_NA_1: (QRP,), T.C_TS_TA_1: (TSC, TT56),
    T.P_ME_NA_1: (NVA, QPM), T.P_ME_NB_1: (SVA, QPM),
}
"""The ``io.*`` fields of each type spicy-iec104 logs on its own (after ``io.obj_addr``);
other types go to ``iec104-unk``."""

_CONN: tuple[Column, ...] = (
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("is_orig", "bool"), ("apdu", "count"))
_APCI_FIELDS: dict[str, tuple[Column, ...]] = {
    "I": (("ssn", "count"), ("rsn", "count")),
    "S": (("rsn", "count"),),
    "U": (("startdt", "count"), ("stopdt", "count"), ("testfr", "count")),
}
_IDENT: tuple[Column, ...] = tuple((f"ident.{n}", t) for n, t in (
    ("type_id", "enum"), ("nobj", "count"), ("sq", "bool"), ("cot", "enum"), ("pn", "bool"),
    ("test", "bool"), ("originator_address", "count"), ("common_address", "count")))
_TYPED: tuple[Column, ...] = (("type_id", "enum"), ("type_id_code", "int"))


def _columns(path: str) -> tuple[Column, ...]:
    """The fields of one log (by its path, e.g. ``iec104-apci_i``)."""
    kind = path.removeprefix("iec104-")
    if kind.startswith("apci_"):
        return _CONN + _APCI_FIELDS[kind[-1].upper()]
    if kind == "asdu-ident":
        return _CONN + _IDENT
    if kind == "unk":
        return _CONN + _TYPED + (("data", "string"),)
    parts = (OBJ_ADDR, *IO_FIELDS[T[kind]])
    return _CONN + _TYPED + tuple((f"io.{name}", ztype) for part in parts
                                  for name, ztype in part[0])


# -- formatting ----------------------------------------------------------------------------

def _uid(key: tuple[Any, ...]) -> str:
    """A Zeek-like connection UID ('C' + 17 base-62 characters), stable for one connection."""
    digest = int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=12).digest(),
                            "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(17):
        digest, rem = divmod(digest, 62)
        out.append(alphabet[rem])
    return "C" + "".join(out)


def _tsv(value: Any, ztype: str) -> str:
    if value is None:
        return "-"
    if ztype == "bool":
        return "T" if value else "F"
    if ztype == "time":
        return f"{value / 1e9:.6f}"
    if ztype == "double":  # r32: the binary32 the device sent, shortest text
        return "-" if math.isnan(value) else float32_text(value)
    text = str(value)
    if not text:
        return "(empty)"
    return "".join(c if c.isprintable() and c not in "\t\\" else f"\\x{ord(c):02x}"
                   for c in text)


def _iso(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000 // 1000:06d}Z"


def _json(value: Any, ztype: str) -> Any:
    if ztype == "time":
        return _iso(value)
    if ztype == "double":
        return None if math.isnan(value) else float(float32_text(value))
    return value


class _Log:
    """One log file: written under a hidden name, renamed when closed."""

    def __init__(self, directory: Path, path: str, as_json: bool) -> None:
        self.path = path
        self.columns = _columns(path)
        self.final = directory / f"{path}.log"
        self.partial = directory / f".{path}.log.partial"
        self.as_json = as_json
        self.rows = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._fh: IO[str] = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, values: tuple[Any, ...]) -> None:
        ns = values[0]
        if self.first_ns is None:
            self.first_ns = ns
            if not self.as_json:
                self._header()
        self.last_ns = ns
        self.rows += 1
        if self.as_json:
            record = {name: _json(v, ztype) for (name, ztype), v in zip(self.columns, values,
                                                                          strict=True)
                      if v is not None}
            self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        else:
            self._fh.write("\t".join(_tsv(v, ztype) for (_, ztype), v
                                     in zip(self.columns, values, strict=True)) + "\n")

    def _header(self) -> None:
        stamp = datetime.fromtimestamp((self.first_ns or 0) / 1e9, UTC)
        self._fh.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n"
                       f"#unset_field\t-\n#path\t{self.path}\n"
                       f"#open\t{stamp:%Y-%m-%d-%H-%M-%S}\n"
                       "#fields\t" + "\t".join(n for n, _ in self.columns) + "\n"
                       "#types\t" + "\t".join(t for _, t in self.columns) + "\n")

    def close(self) -> Path:
        if not self.as_json:
            stamp = datetime.fromtimestamp((self.last_ns or 0) / 1e9, UTC)
            self._fh.write(f"#close\t{stamp:%Y-%m-%d-%H-%M-%S}\n")
        self._fh.close()
        os.replace(self.partial, self.final)
        return self.final

    def discard(self) -> None:
        self._fh.close()
        self.partial.unlink(missing_ok=True)


class ZeekWriter:
    """Write record batches as spicy-iec104 logs into ``directory`` (created if needed).

    Args:
        directory: where the ``iec104-*.log`` files go.
        json: JSON lines instead of Zeek's TSV format.
        profile: ASDU field sizes used to decode the ``raw`` octets again.

    Use as a context manager or call :meth:`close` (which returns the files written); on an
    exception inside ``with``, the unfinished files are removed.
    """

    def __init__(self, directory: str | os.PathLike[str], *, json: bool = False,
                 profile: Profile = DEFAULT_PROFILE) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.as_json = json
        self.profile = profile
        self.skipped = 0
        """Rows that are no APDU (gaps, malformed octets, connection events)."""
        self._logs: dict[str, _Log] = {}
        self._done: list[Path] = []
        self._conns: dict[tuple[Any, ...], list[Any]] = {}  # stream key -> [uid, apdu count]

    def _log(self, path: str) -> _Log:
        log = self._logs.get(path)
        if log is None:
            log = self._logs[path] = _Log(self.directory, path, self.as_json)
        return log

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Log the APDUs of one batch of our schema (rows of one APDU may span batches)."""
        import pyarrow as pa

        names = ("stream", "direction", "src", "sport", "dst", "dport", "apdu", "apci", "obj",
                 "raw")
        columns = {n: batch.column(n).to_pylist() for n in names}
        columns["time"] = batch.column("time").cast(pa.int64()).to_pylist()
        for i in range(batch.num_rows):
            if columns["obj"][i] not in (None, 0):
                continue  # one row per APDU: its first
            row = {n: c[i] for n, c in columns.items()}
            if row["apdu"] is None or row["apci"] is None:
                self.skipped += 1
                continue
            self._apdu(row)

    def write(self, batches: Iterable[pa.RecordBatch]) -> None:
        for batch in batches:
            self.write_batch(batch)

    def _apdu(self, row: dict[str, Any]) -> None:
        is_orig = row["direction"] == "c2s"
        orig = (row["src"], row["sport"]) if is_orig else (row["dst"], row["dport"])
        resp = (row["dst"], row["dport"]) if is_orig else (row["src"], row["sport"])
        key = (row["stream"], *orig, *resp)
        conn = self._conns.get(key)
        time_ns = row["time"] or 0
        if conn is None:
            conn = self._conns[key] = [_uid((*key, time_ns)), 0]
        conn[1] += 1
        base = (time_ns, conn[0], *orig, *resp, is_orig, conn[1])
        raw = bytes(row["raw"])
        frame = decode_apdu(raw)  # the row says it is an APDU: its octets decode
        apci = row["apci"]
        if apci == "U":
            ctrl = raw[2]
            self._log("iec104-apci_u").write(
                (*base, ctrl >> 2 & 3, ctrl >> 4 & 3, ctrl >> 6 & 3))
            return
        if apci == "S":
            self._log("iec104-apci_s").write((*base, frame.rsn))  # type: ignore[union-attr]
            return
        self._log("iec104-apci_i").write((*base, frame.ssn, frame.rsn))  # type: ignore[union-attr]
        self._asdu(base, frame.asdu)  # type: ignore[union-attr]

    def _asdu(self, base: tuple[Any, ...], octets: bytes) -> None:
        try:
            header, start = decode_header(octets, self.profile)
        except DecodeError:
            return  # no identifier to log (the row's error says why)
        self._log("iec104-asdu-ident").write((
            *base, type_enum(header.type_id), header.num_objects, header.sequence,
            cot_enum(header.cause), header.negative, header.test, header.originator,
            header.common_address))
        typed = (type_enum(header.type_id), int(header.type_id))
        parts = IO_FIELDS.get(header.type_id) if isinstance(header.type_id, TypeId) else None
        try:
            asdu = decode_asdu(octets, self.profile) if parts else None
        except DecodeError:
            asdu = None
        if parts is None or not isinstance(asdu, ASDU):
            self._log("iec104-unk").write((*base, *typed, octets[start:].hex()))
            return
        log = self._log(f"iec104-{type_enum(header.type_id)}")
        for obj in asdu.objects:
            values: list[Any] = [obj.address]
            for _, get in parts:
                values += get(obj)
            log.write((*base, *typed, *values))

    @property
    def files(self) -> list[Path]:
        """The logs completed by :meth:`close`, by name."""
        return sorted(self._done)

    def close(self) -> list[Path]:
        """Finish every log (footer, rename into place); returns the files."""
        self._done += [log.close() for log in self._logs.values()]
        self._logs.clear()
        return self.files

    def discard(self) -> None:
        """Remove the unfinished logs (after a failure)."""
        for log in self._logs.values():
            log.discard()
        self._logs.clear()

    def __enter__(self) -> ZeekWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
