"""tshark as an independent oracle for IEC 60870-5-104 captures (``iec104 verify``).

Theory of operation
-------------------
``tshark -T pdml`` prints the full dissection tree as XML. For IEC 104 the tree of one frame is a
flat run of sibling ``<proto>`` elements, one pair per APDU::

    <proto name="iec60870_104">   APCI of APDU 1 (start, length, type, N(S)/N(R) or U function)
    <proto name="iec60870_asdu">  ASDU of APDU 1 (only for I-frames)
    <proto name="iec60870_104">   APCI of APDU 2
    ...
    <proto name="_ws.malformed">  appended when a dissector threw (belongs to the APDU before it)

and inside ``iec60870_asdu`` every information object is an *unnamed* ``<field name="">`` whose
``show`` is ``"IOA: n"`` and whose children are the IOA and the element fields. We walk that
tree, so APDUs and objects keep their grouping; ``-T fields`` would flatten it (repeated fields
are joined with separators and one cannot tell which value belongs to which APDU/object).
The XML is parsed incrementally (``iterparse``), so big captures do not sit in memory.

Public API
----------
``find_tshark() -> str | None``
    Path of a usable tshark (``$TSHARK`` or ``which tshark``); None if there is none.
    (``tests.support.tshark.ensure_tshark`` skips a test without it, and fails in CI.)
``tshark_apdus(pcap_path, *, port=None, extra_opts=(), display_filter=None, check=True)``
    ``-> list[dict]``: one dict per APDU, in file order (frame order, then order inside the
    frame). ``port`` adds ``-d tcp.port==PORT,iec60870_104`` (decode as IEC 104 on a
    non-standard port); ``extra_opts`` are appended verbatim to the command line, e.g.
    ``("-o", "tcp.analyze_sequence_numbers:FALSE")``.
``TSHARK_NO_SEQ_ANALYSIS``
    That option pair, needed for the heinrihs capture (see quirks).

APDU dict (keys always present; ``None`` when tshark does not report the field)
-------------------------------------------------------------------------------
=============== ============================================== ====================================
key             tshark field                                   notes
=============== ============================================== ====================================
frame           frame.number                                   int, 1-based
time            frame.time_epoch                               float seconds
time_ns         frame.time_epoch (its text, exactly)           int ns since the epoch
stream          tcp.stream                                     int, Wireshark's TCP stream index
index           (position of the APDU in the frame)            int, 0-based
src_ip, dst_ip  ip.src / ip.dst (ipv6.src / ipv6.dst)          str
src_port, ...   tcp.srcport / tcp.dstport                      int
direction       derived: 'c2s' if dst_port == server port,     server port = ``port`` or 2404
                's2c' if src_port == server port, else None
prefix          iec60870_104.data                              bytes of junk *before* the 0x68
                                                               start byte, or None
apdu_len        iec60870_104.apdulen                           int (the length octet)
apci            iec60870_104.type                              'I', 'S', 'U' (None if absent)
ssn             iec60870_104.tx                                int, I only
rsn             iec60870_104.rx                                int, I and S
u_func          iec60870_104.utype (its name)                  'STARTDT_ACT', 'STARTDT_CON',
                                                               'STOPDT_ACT', 'STOPDT_CON',
                                                               'TESTFR_ACT', 'TESTFR_CON'; None for
                                                               unknown codes
u_code          iec60870_104.utype (value)                     int = control octet 1 >> 2, i.e.
                                                               1, 2, 4, 8, 0x10, 0x20 (0x05 seen)
type_id         iec60870_asdu.typeid                           int
type_name       iec60870_asdu.typeid (name in showname)        'M_ME_NC_1'; None if "Unknown"
sq              iec60870_asdu.sq                               bool
num_objects     iec60870_asdu.numix                            int (the VSQ count, as sent)
cot             iec60870_asdu.causetx                          int, the 6-bit cause only
cot_name        iec60870_asdu.causetx (name in showname)       tshark's mnemonics (see quirks)
negative        iec60870_asdu.nega                             bool (P/N bit)
test            iec60870_asdu.test                             bool (T bit)
oa              iec60870_asdu.oa                               int (originator address)
ca              iec60870_asdu.addr                             int (common address)
objects         (unnamed groups "IOA: n", see below)           list[dict]; [] for S/U frames
malformed       _ws.malformed after this APDU                  bool
expert          _ws.expert.message inside/after the APDU       list[str]
=============== ============================================== ====================================

Object dict
-----------
Always ``ioa`` (iec60870_asdu.ioa, int) and ``fields`` (``{tshark field name: show string}``
of everything tshark put in the object, for anything not mapped below). The other keys are
present only when tshark reports them:

================ ========================================= ======================================
key              tshark field                              notes
================ ========================================= ======================================
value            siq.spi -> bool; diq.dpi -> int 0..3;     the element's main value
                 vti.v -> int; bitstring -> int;
                 normval -> float; scalval -> int;
                 float -> float; bcr.count -> int;
                 sco.on -> bool; dco.on -> int 0..3;
                 rco.up -> int 0..3
transient        vti.t                                     bool
normval_raw      (wire bytes of normval)                   int16 as sent; value == raw / 32768
normval_text     normval (show)                            tshark's rounded text, '-3.05176e-05'
float_text       float (show)                              tshark's rounded text, e.g. '3.14'
bitstring_bytes  (wire bytes of bitstring)                 the 4 octets in wire order
iv nt sb bl ov   siq.* / diq.* / qds.*                     bools (quality descriptor bits)
iv cy ca seq     bcr.iv / bcr.cy / bcr.ca / bcr.sq         binary counter quality and sequence
select           sco.se / dco.se / rco.se / qos.se         bool, True = select, False = execute
qu               sco.qu / dco.qu / rco.qu                  int (qualifier of command)
ql               qos.ql                                    int (qualifier of set-point command)
qualifier        qoi / qcc / qpm / coi / qrp               int, the whole qualifier octet
rqt, frz         qcc's rqt / frz                           ints (counter interrogation)
kpa, lpc, pop    qpm.kpa / qpm.lpc / qpm.pop               ints
coi_r, coi_i     coi_r / coi_i                             int / bool (end of initialisation)
time             cp56time.* or cp24time.*                  dict: ms, min, iv (+ hour, su, day,
                                                           dow, month, year, gen for CP56) and
                                                           ``text`` (tshark's rendering)
raw              rawdata                                   bytes tshark did not decode
================ ========================================= ======================================

Quirks of tshark 4.0.17 (the Debian 12 version these were checked against)
---------------------------------------------------------------------------
* **Profile is fixed** in the 104 dissector: COT 2 octets, CA 2 octets, IOA 3 octets (the
  ``iec60870_101.*_len`` preferences apply to IEC 101 only). tshark cannot be an oracle for
  other profiles.
* **Normalized values** (``normval``: M_ME_NA/TA/TD/ND, C_SE_NA/TA, P_ME_NA) are an FT_FLOAT whose
  ``show`` is ``raw / 32768`` *rounded to 6 significant digits* (``-1`` -> ``'-3.05176e-05'``)
  and whose showname adds the raw integer: ``"Value: 0.25 (8192)"``. We return the exact int16
  from the field's wire bytes as ``normval_raw``, ``value = normval_raw / 32768`` (exact), and
  tshark's text as ``normval_text``. -32768 is shown as -1.
* **Short floats** (``float``: M_ME_NC/TC/TF, C_SE_NC/TC, P_ME_NC) are *displayed* rounded
  (``'3.14'`` for 3.1400001049041748). ``value`` is decoded exactly from the field's wire bytes
  (IEEE 754 single, little endian) so it compares ``==`` to ``struct.unpack('<f', ...)``;
  the rounded text is kept as ``float_text``.
* **Bitstrings** (BSI, types 7/33/51/64) are read **big endian**: wire ``02 00 00 00`` shows
  as ``0x02000000``. ``value`` is that int (tshark's view); ``bitstring_bytes`` keeps the octets,
  so ``int.from_bytes(bitstring_bytes, 'little')`` is the usual (lib60870) interpretation.
* **COT names** are tshark's own mnemonics, not the standard's: ``Per/Cyc`` (1), ``Back``,
  ``Spont``, ``Init``, ``Req``, ``Act``, ``ActCon``, ``Deact``, ``DeactCon``, ``ActTerm``,
  ``Retrem``, ``Retloc``, ``File``, ``Inrogen`` (20), ``Inro1``..``Inro16``, ``Reqcogen`` (37),
  ``Reqco1``..``Reqco4``, ``UkTypeId`` (44), ``UkCauseTx`` (45), ``UkComAdrASDU`` (46),
  ``UkIOA`` (47). Use ``cot`` (int) for comparisons.
* **Type names** are the standard mnemonics with ``_1`` (``M_ME_NC_1``); see below for the ids
  shown as ``"Unknown (n)"`` (``type_name=None``).
* **Not every type is decoded to objects.** Decoded (probed with one object of every type id
  1-127): 1-16 (incl. the IEC 101 CP24 ``*_TA_1`` types), 21, 30-37, 45-51, 58-64, 70, 100,
  101, 103, 105, 110-112. Every other id (17-20, 38-40, 102 with trailing bytes, 104, 106,
  107, 113, 120-127, reserved ids) gives the first IOA directly under the ASDU plus one
  ``rawdata`` blob with the rest; C_RD_NA_1 (102) puts its bare IOA directly under the ASDU.
  Those cases become *one* object here (``raw`` holds the blob), whatever the VSQ count says.
  Names: ids tshark does not know (17-19, 22-29, 41-44, 52-57, 65-69, 71-80, 88, 89, 96-99,
  104, **106 C_CD_NA_1**, 108, 109, 114-119) show as ``Unknown (n)`` -> ``type_name=None``.
* **Truncated ASDUs** are decoded as far as the bytes go (e.g. snort3's SQ=1 VSQ=127 frame
  yields 13 objects) and then flagged malformed; compare ``num_objects`` with
  ``len(objects)``.
* **Not flagged at all**: an APDU length octet that disagrees with the U/S format (snort3's
  ``68 05 07 00 00 00 00``: a STARTDT act with apdu_len 5) and reserved control bits in an
  S-frame (``68 04 05 00 28 00`` is reported as S with rsn 20).
* **Non-standard port**: nothing is dissected unless ``port=`` (``-d``) is given.
* **SQ=1**: the objects after the first get *generated* IOAs (base + i); their groups look the
  same as SQ=0 groups, so ``objects`` is uniform.
* **CP56Time2a**: the component keys are the raw fields. ``text`` is the date tshark shows,
  which is *not* the raw fields: years 0-69 become 20xx but 70-127 become **19xx** (so 109
  is 2009; :func:`iec104.codec.cp56_year` is the same rule), and when SU=1 the text is **one
  hour earlier** than the hour field (it is treated as DST and converted). The dissector's
  agreement test compares ``time_tag`` with ``text``; the codec's compares the components.
  Bit 6 of the minutes octet (reserved in 104, "GEN" in 101) is reported as ``gen``.
* **CP24Time2a** is only used by the IEC 101 ``*_TA_1`` types (2, 4, ...), which tshark also
  decodes on 104; its ``text`` is seconds into the hour (``'310.000000000'``).
* **Malformed input**: junk before the start byte is reported as ``iec60870_104.data`` (``prefix``)
  and the column shows ``<ERR prefix N bytes>``; an ASDU that is shorter than its header/VSQ
  claims ends with a sibling ``_ws.malformed`` proto ("Malformed Packet (Exception occurred)")
  -> ``malformed=True``; an APDU length < 4 gives ``apci=None``, ``malformed=True`` and the
  expert message "APDU less than 4 bytes";
  an unknown U function gives ``u_func=None`` and the info column ``U (<ERR>)``.
* **TCP analysis**: with default preferences tshark drops segments it considers
  retransmissions. The heinrihs capture has Seq=1/Ack=1 on every segment, so only 1 APDU is
  dissected unless ``TSHARK_NO_SEQ_ANALYSIS`` (``-o tcp.analyze_sequence_numbers:FALSE``) is
  passed; then all 3,422 are.
* APDUs split over several TCP segments are reported in the frame that completes them (TCP
  reassembly); the intermediate frames have no IEC 104 layer.
"""

from __future__ import annotations

import functools
import os
import shutil
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET  # noqa: S405 -- tshark's own output, not untrusted XML
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..codec import Iec104Error

__all__ = ["IEC104_PORT", "TSHARK_NO_SEQ_ANALYSIS", "TsharkError", "find_tshark",
           "tshark_apdus", "tshark_command", "tshark_version"]

IEC104_PORT = 2404
TSHARK_NO_SEQ_ANALYSIS = ("-o", "tcp.analyze_sequence_numbers:FALSE")

_U_FUNCS = {
    "STARTDT act": "STARTDT_ACT",
    "STARTDT con": "STARTDT_CON",
    "STOPDT act": "STOPDT_ACT",
    "STOPDT con": "STOPDT_CON",
    "TESTFR act": "TESTFR_ACT",
    "TESTFR con": "TESTFR_CON",
}

_PREFIX = "iec60870_asdu."


class TsharkError(Iec104Error, RuntimeError):
    """tshark is missing or exited with an error (``returncode`` -1: not found)."""

    def __init__(self, returncode: int, stderr: str, cmd: Sequence[str]) -> None:
        if returncode == -1:
            text = stderr
        else:
            text = f"tshark exited with {returncode}: {stderr.strip()} (cmd: {list(cmd)})"
        super().__init__(text)
        self.returncode = returncode
        self.stderr = stderr


MISSING = "tshark is not installed (apt-get install tshark, or set $TSHARK)"


@functools.cache
def find_tshark() -> str | None:
    """Path of tshark (``$TSHARK`` or the first ``tshark`` on ``PATH``); None if missing."""
    candidate = os.environ.get("TSHARK") or shutil.which("tshark")
    if not candidate or not os.access(candidate, os.X_OK):
        return None
    return candidate


def _require() -> str:
    path = find_tshark()
    if path is None:
        raise TsharkError(-1, MISSING, [])
    return path


@functools.cache
def tshark_version() -> tuple[int, ...]:
    """(major, minor, patch) of the tshark found by :func:`find_tshark`."""
    out = subprocess.run(
        [_require(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    first = out.splitlines()[0]  # "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as ...)"
    return tuple(int(x) for x in first.split()[2].split(".")[:3])


def _name_in_showname(showname: str | None) -> str | None:
    """'TypeId: M_ME_NC_1 (13)' -> 'M_ME_NC_1'; '..00 0110 = CauseTx: Act (6)' -> 'Act'."""
    if not showname:
        return None
    text = showname.split(" = ", 1)[-1]
    text = text.split(": ", 1)[-1]
    name = text.rsplit(" (", 1)[0].strip()
    return None if name.startswith("Unknown") else name


def _int(field: ET.Element) -> int:
    show = field.get("show", "")
    return int(show, 0) if show.startswith("0x") else int(show)


def _bool(field: ET.Element) -> bool:
    return field.get("show") not in ("0", "False", "false", "")


def _raw(field: ET.Element) -> bytes:
    """Wire bytes of a non-bitmask field (PDML ``value`` attribute is their hex)."""
    return bytes.fromhex(field.get("value", ""))


def _time(field: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {"text": field.get("show")}
    kind = field.get("name", "")
    for child in field:
        key = child.get("name", "").removeprefix(kind + ".")
        if key in ("iv", "su", "gen"):
            out[key] = _bool(child)
        elif key:
            out[key] = _int(child)
    return out


_QUALITY = {"iv", "nt", "sb", "bl", "ov"}


def _apply_field(obj: dict[str, Any], field: ET.Element) -> None:
    """Map one tshark field (and its children) of an information object into ``obj``."""
    name = field.get("name", "")
    obj["fields"][name] = field.get("show")
    short = name.removeprefix(_PREFIX)
    if short == "ioa":
        if obj["ioa"] is None:
            obj["ioa"] = _int(field)
    elif short in ("siq", "diq", "qds", "vti", "sco", "dco", "rco", "qos", "qpm", "coi", "qcc"):
        if short in ("qpm", "coi", "qcc"):
            obj["qualifier"] = _int(field)
        for child in field:
            _apply_field(obj, child)
    elif short in ("siq.spi", "sco.on"):
        obj["value"] = _bool(field)
    elif short in ("diq.dpi", "dco.on", "rco.up", "vti.v"):
        obj["value"] = _int(field)
    elif short == "vti.t":
        obj["transient"] = _bool(field)
    elif short.split(".")[0] in ("siq", "diq", "qds") and short.split(".")[-1] in _QUALITY:
        obj[short.split(".")[-1]] = _bool(field)
    elif short in ("sco.se", "dco.se", "rco.se", "qos.se"):
        obj["select"] = _bool(field)
    elif short in ("sco.qu", "dco.qu", "rco.qu"):
        obj["qu"] = _int(field)
    elif short == "qos.ql":
        obj["ql"] = _int(field)
    elif short in ("qpm.kpa", "qpm.lpc", "qpm.pop"):
        obj[short.split(".")[1]] = _int(field)
    elif short in ("qcc.rqt", "rqt", "qcc.frz", "frz"):
        obj[short.split(".")[-1]] = _int(field)
    elif short == "coi_r":
        obj["coi_r"] = _int(field)
    elif short == "coi_i":
        obj["coi_i"] = _bool(field)
    elif short in ("qoi", "qrp"):
        obj["qualifier"] = _int(field)
    elif short == "bitstring":
        obj["value"] = _int(field)
        obj["bitstring_bytes"] = _raw(field)
    elif short == "normval":
        obj["normval_raw"] = struct.unpack("<h", _raw(field))[0]
        obj["value"] = obj["normval_raw"] / 32768
        obj["normval_text"] = field.get("show")
    elif short == "scalval":
        obj["value"] = _int(field)
    elif short == "float":
        obj["value"] = struct.unpack("<f", _raw(field))[0]
        obj["float_text"] = field.get("show")
    elif short == "bcr.count":
        obj["value"] = _int(field)
    elif short == "bcr.sq":
        obj["seq"] = _int(field)
    elif short in ("bcr.cy", "bcr.ca", "bcr.iv"):
        obj[short.split(".")[1]] = _bool(field)
    elif short in ("cp56time", "cp24time"):
        obj["time"] = _time(field)
    elif short == "rawdata":
        obj["raw"] = _raw(field)


def _new_object() -> dict[str, Any]:
    return {"ioa": None, "fields": {}}


def _parse_asdu(proto: ET.Element, apdu: dict[str, Any]) -> None:
    header = {
        "typeid": "type_id",
        "numix": "num_objects",
        "causetx": "cot",
        "oa": "oa",
        "addr": "ca",
    }
    objects: list[dict[str, Any]] = apdu["objects"]
    loose: dict[str, Any] | None = None  # object built from fields placed directly in the ASDU
    for field in proto:
        name = field.get("name", "")
        short = name.removeprefix(_PREFIX)
        if name == "":
            obj = _new_object()
            for child in field:
                _apply_field(obj, child)
            objects.append(obj)
            loose = None
        elif short in header:
            apdu[header[short]] = _int(field)
            if short == "typeid":
                apdu["type_name"] = _name_in_showname(field.get("showname"))
            elif short == "causetx":
                apdu["cot_name"] = _name_in_showname(field.get("showname"))
        elif short in ("sq", "nega", "test"):
            apdu[{"sq": "sq", "nega": "negative", "test": "test"}[short]] = _bool(field)
        elif name.startswith(_PREFIX):
            # C_RD_NA_1 and undecoded types: IOA (+ rawdata) directly under the ASDU.
            if short == "ioa" or loose is None:
                loose = _new_object()
                objects.append(loose)
            _apply_field(loose, field)
        _collect_expert(field, apdu)


def _parse_apci(proto: ET.Element, apdu: dict[str, Any]) -> None:
    for field in proto:
        name = field.get("name", "")
        if name == "iec60870_104.data":
            apdu["prefix"] = _raw(field)
        elif name == "iec60870_104.apdulen":
            apdu["apdu_len"] = _int(field)
        elif name == "iec60870_104.type":
            apdu["apci"] = {0: "I", 1: "S", 2: "I", 3: "U"}.get(_int(field) & 3)
        elif name == "iec60870_104.tx":
            apdu["ssn"] = _int(field)
        elif name == "iec60870_104.rx":
            apdu["rsn"] = _int(field)
        elif name == "iec60870_104.utype":
            apdu["u_code"] = _int(field)
            apdu["u_func"] = _U_FUNCS.get(_name_in_showname(field.get("showname")) or "")
        _collect_expert(field, apdu)


def _collect_expert(field: ET.Element, apdu: dict[str, Any]) -> None:
    for el in field.iter():
        if el.get("name") == "_ws.expert.message":
            apdu["expert"].append(el.get("show", ""))
        elif el.get("name") == "_ws.malformed":
            apdu["malformed"] = True


def _new_apdu(frame_info: dict[str, Any], index: int) -> dict[str, Any]:
    apdu: dict[str, Any] = dict(frame_info)
    apdu.update(
        index=index,
        prefix=None,
        apdu_len=None,
        apci=None,
        ssn=None,
        rsn=None,
        u_func=None,
        u_code=None,
        type_id=None,
        type_name=None,
        sq=None,
        num_objects=None,
        cot=None,
        cot_name=None,
        negative=None,
        test=None,
        oa=None,
        ca=None,
        objects=[],
        malformed=False,
        expert=[],
    )
    return apdu


_FRAME_FIELDS = {
    "frame.number": ("frame", int),
    "frame.time_epoch": ("time", float),
    "ip.src": ("src_ip", str),
    "ip.dst": ("dst_ip", str),
    "ipv6.src": ("src_ip", str),
    "ipv6.dst": ("dst_ip", str),
    "tcp.srcport": ("src_port", int),
    "tcp.dstport": ("dst_port", int),
    "tcp.stream": ("stream", int),
}


def epoch_ns(text: str) -> int:
    """tshark's ``frame.time_epoch`` text (``'1795680599.022267442'``) as exact integer ns."""
    seconds, _, fraction = text.partition(".")
    ns = int(seconds) * 1_000_000_000
    return ns + int((fraction + "000000000")[:9]) * (-1 if text.startswith("-") else 1)


def _parse_packet(packet: ET.Element, server_port: int) -> list[dict[str, Any]]:
    info: dict[str, Any] = {
        "frame": None,
        "time": None,
        "time_ns": None,
        "stream": None,
        "src_ip": None,
        "dst_ip": None,
        "src_port": None,
        "dst_port": None,
    }
    apdus: list[dict[str, Any]] = []
    for proto in packet:
        pname = proto.get("name")
        if pname in ("frame", "ip", "ipv6", "tcp"):
            for field in proto:
                key = _FRAME_FIELDS.get(field.get("name", ""))
                if key and info[key[0]] is None:
                    info[key[0]] = key[1](field.get("show"))
                    if key[0] == "time":
                        info["time_ns"] = epoch_ns(field.get("show", ""))
        elif pname in ("iec60870_104", "iec60870_101"):  # 101: FT1.2 frames, no APCI
            if not apdus:
                direction = None
                if info["dst_port"] == server_port:
                    direction = "c2s"
                elif info["src_port"] == server_port:
                    direction = "s2c"
                info["direction"] = direction
            apdus.append(_new_apdu(info, len(apdus)))
            if pname == "iec60870_104":
                _parse_apci(proto, apdus[-1])
        elif pname == "iec60870_asdu" and apdus:
            _parse_asdu(proto, apdus[-1])
        elif pname == "_ws.malformed" and apdus:
            apdus[-1]["malformed"] = True
            _collect_expert(proto, apdus[-1])
    return apdus


def _iter_packets(cmd: list[str], check: bool) -> Iterator[ET.Element]:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        try:
            for _event, elem in ET.iterparse(proc.stdout, events=("end",)):
                if elem.tag == "packet":
                    yield elem
                    elem.clear()
        except ET.ParseError:
            if proc.wait() == 0:
                raise
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if check and returncode != 0:
            err.seek(0)
            raise TsharkError(returncode, err.read().decode(errors="replace"), cmd)


def tshark_command(
    pcap_path: str | os.PathLike[str],
    *,
    port: int | None = None,
    extra_opts: Sequence[str] = (),
    display_filter: str | None = None,
) -> list[str]:
    """The tshark command line :func:`tshark_apdus` runs (useful in assertion messages)."""
    cmd = [_require(), "-n", "-r", str(pcap_path), "-T", "pdml"]
    if port is not None:
        cmd += ["-d", f"tcp.port=={int(port)},iec60870_104"]
    cmd += ["-Y", display_filter or "iec60870_104"]
    cmd += list(extra_opts)
    return cmd


def tshark_apdus(
    pcap_path: str | os.PathLike[str],
    *,
    port: int | None = None,
    extra_opts: Sequence[str] = (),
    display_filter: str | None = None,
    check: bool = True,
) -> list[dict[str, Any]]:
    """Dissect ``pcap_path`` with tshark and return one dict per IEC 104 APDU, in file order.

    Args:
        pcap_path: pcap or pcapng file.
        port: decode TCP ``port`` as IEC 104 too (``-d tcp.port==port,iec60870_104``); also the
            server port used for ``direction`` (default 2404).
        extra_opts: extra tshark arguments, e.g. :data:`TSHARK_NO_SEQ_ANALYSIS`.
        display_filter: replaces the default ``-Y iec60870_104``.
        check: raise :class:`TsharkError` if tshark exits non-zero (e.g. a truncated file).

    See the module docstring for the keys of the dicts.
    """
    if not Path(pcap_path).is_file():
        raise FileNotFoundError(pcap_path)
    cmd = tshark_command(pcap_path, port=port, extra_opts=extra_opts, display_filter=display_filter)
    server_port = IEC104_PORT if port is None else int(port)
    apdus: list[dict[str, Any]] = []
    for packet in _iter_packets(cmd, check):
        apdus.extend(_parse_packet(packet, server_port))
    return apdus
