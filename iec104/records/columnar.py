"""Columnar decoding: a batch of APDUs -> the schema's columns, with numpy gathers.

Theory of operation
-------------------
:class:`ColumnarBuilder` takes the place of :class:`~.builder.RecordBuilder` (same methods,
same rows, same batches) but decodes *by column* when a batch is taken:

* :meth:`ColumnarBuilder.add_frame` keeps only an APDU's octets, capture time, frame number,
  endpoints and APDU number when the APDU is one the columnar stage decodes -- U- and
  S-frames, and I-frames of a type whose element has a :class:`~iec104.codec.elements.Layout`
  and whose length is exactly what the type, the SQ bit and the object count say (SQ=1
  addresses within the profile's IOA range). Its row count (``max(1, count)``) is then known
  without decoding. Everything else -- unknown or private types, file transfer, protection
  events, parameters, length errors, malformed octets, gaps, connection events -- goes at
  once to an inner :class:`~.builder.RecordBuilder` (today's scalar path, unchanged), and
  its place among the columnar APDUs is noted.
* The fast lane admits many APDUs at once (:meth:`ColumnarBuilder.admit`,
  :meth:`~ColumnarBuilder.add_admitted`) as arrays over its flush's octets (each APDU's
  start and length, time, frame): they are kept as such a *part*, without a Python object
  per APDU; ``add_apdu``'s APDUs since the last part become a part of their own.
* :meth:`ColumnarBuilder.take_batch` joins the parts' octets into one buffer and decodes
  the APDUs where they lie in it with vectorised gathers over ``np.frombuffer``: APCI and data unit identifier per APDU,
  then one row per object (``np.repeat`` of the counts; SQ=0 objects at ``count * (IOA +
  size)`` strides, SQ=1 objects at ``size`` strides from one address), then, type by type
  present in the batch, the element fields where its ``Layout`` says they lie. Value texts
  are made once per distinct value octets in the batch (found by counting or by Arrow's
  hashing, :func:`_distinct`): by the *scalar* codec and :func:`~.builder.value_text` (so
  they cannot differ from the scalar path's), except the texts of float, normalized and
  scaled values, ``repr()`` of the number, which Arrow's cast writes for most numbers
  (:func:`_number_texts`). Names (``type_name``, ``cot_name``, ``u_func``, ``apci``,
  endpoints) are taken from small tables by code. The APDU-level columns are narrowed to
  their columns' types, then repeated per row by one gather (none when every APDU has one
  row).
* Every I-frame carries its own :class:`~iec104.codec.Profile` and detection confidence
  (``add_frame(..., profile, confidence)``, as :class:`~.profiles.DetectingBuilder` passes
  them; default: the builder's ``profile``): the gathers read the field sizes per APDU, so
  directions with different profiles share one batch, and the ``profile`` and
  ``profile_confidence`` cells are filled as the scalar path fills them.
* Time tags are converted vectorised (CP56 by a table of months, CP24 completed from the
  capture time). An APDU with a tag that is no calendar time, a CP56 year above 99 or a CP24
  tag without a capture time needs an ``error`` text: it is decoded again by the scalar
  builder, which owns those texts.
* The scalar rows (inner builder, re-decoded APDUs) are put in their places with one Arrow
  ``take``; a batch without them is built directly.

The batches are equal to :class:`~.builder.RecordBuilder`'s, row for row and cell for cell
(``tests/records/test_columnar.py`` runs both on the same APDUs), so a Parquet file written
from them is byte-identical.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..codec import (
    ASDU_AT,
    CONTROL_AT,
    DEFAULT_PROFILE,
    Frame,
    Malformed,
    Profile,
    UFunction,
    cause_name,
    cp56_year,
    decode_apdu,
    header_layout,
    type_name,
)
from ..codec.elements import ELEMENTS, Layout, ValueKind
from ..codec.header import CAUSE_MASK, COUNT_MASK, NEGATIVE_BIT, SQ_BIT, TEST_BIT
from .arrays import array, scalar, to_numpy
from .builder import Endpoints, RecordBuilder, profile_text, value_text
from .schema import SCHEMA, RowKind

__all__ = ["ColumnarBuilder"]

# Arrays are built and read through .arrays, never pa.array/np.asarray: pyarrow would
# import pandas (0.3 s of every start-up) to ask whether they are pandas objects.
_NS = 1_000_000_000
_ZERO = scalar(0, pa.int64())
_TYPE_NAMES = array([type_name(t) for t in range(256)], pa.string())
_CAUSE_NAMES = array([cause_name(c) for c in range(64)], pa.string())
_U_CODES = np.full(256, -1, np.int64)
for _i, _f in enumerate(UFunction):
    _U_CODES[_f.value] = _i
_U_NAMES = array([f.name for f in UFunction], pa.string())
_APCI = array(["I", "S", "U"], pa.string())
_KINDS = array([str(RowKind.APDU), str(RowKind.OBJECT)], pa.string())  # by "has an object"
# type ID -> (layout, element size with time tag, time tag size 0/3/7) for laid-out types
_LAID_OUT: dict[int, tuple[Layout, int, int]] = {
    int(t): (c.layout, int(c.size or 0), int(c.time_size or 0))
    for t, c in ELEMENTS.items() if c.layout is not None}
# type ID -> element size (time tag included) for the types decoded here: a dict for
# add_apdu's one lookup per APDU, an array (-1: the scalar path's types) for the gathers
_SIZES = {t: size for t, (_layout, size, _ts) in _LAID_OUT.items()}
_SIZE_OF = np.full(256, -1, np.int64)
_SIZE_OF[list(_SIZES)] = list(_SIZES.values())
# quality columns and their bits in the quality descriptor
_QUALITY_BITS = (("iv", 0x80), ("nt", 0x40), ("sb", 0x20), ("bl", 0x10), ("ov", 0x01))
_QUALITY_ALL = 0xF1
_PLAIN_NUMBERS = (ValueKind.FLOAT, ValueKind.NORMALIZED, ValueKind.SCALED)
# APDU offsets of the data unit identifier's fields that do not depend on the profile
_HEADER = header_layout()
_TYPE_AT = ASDU_AT + _HEADER.type_id_at
_VSQ_AT = ASDU_AT + _HEADER.vsq_at
_COT_AT = ASDU_AT + _HEADER.cot_at


def _month_tables() -> tuple[np.ndarray, np.ndarray]:
    """CP56 dates by table, by ``years << 4 | months`` (the tag's 7- and 4-bit fields):
    the day before the month's first, in days since 1970-01-01, and the month's length
    (0 where the fields are no month: months 0 and 13-15, years above 99, which the scalar
    path flags). Two gathers instead of the civil-day formula's dozen passes."""
    before = np.zeros(128 << 4, np.int64)
    length = np.zeros(128 << 4, np.int64)
    epoch = dt.date(1970, 1, 1).toordinal()
    for years in range(100):
        year = cp56_year(years)
        for month in range(1, 13):
            before[years << 4 | month] = dt.date(year, month, 1).toordinal() - epoch - 1
            length[years << 4 | month] = calendar.monthrange(year, month)[1]
    return before, length


_MONTH_BEFORE, _MONTH_LENGTH = _month_tables()


class _Part(NamedTuple):
    """Columnar APDUs kept in a row: ``octets[starts[j]:starts[j] + lens[j]]`` is APDU
    ``j`` (the fast lane's parts share its flush's octets; add_apdu's are joined)."""

    octets: bytes
    starts: np.ndarray  # int64
    lens: np.ndarray  # int64
    times: np.ndarray | list[int | None]
    frames: np.ndarray | list[int | None]
    eids: np.ndarray | list[int]
    pids: np.ndarray | list[int]
    apdus: np.ndarray | list[int]


class ColumnarBuilder:
    """A :class:`~.builder.RecordBuilder` that decodes by column; see the module docstring.

    Args:
        profile: ASDU field sizes of the I-frames given without their own.
        first_apdu: number of the first APDU recorded (>= 0).
    """

    decodes_octets = True
    """Frames need not carry a decoded APDU (``Framer(decode=False)`` suffices)."""

    def __init__(self, profile: Profile = DEFAULT_PROFILE, first_apdu: int = 0) -> None:
        self.next_apdu = first_apdu
        self._inner = RecordBuilder(profile, first_apdu)
        self._clear()
        self._endpoints: list[Endpoints] = []
        self._endpoint_ids: dict[Endpoints, int] = {}
        self._last_ep: Endpoints | None = None
        self._last_eid = 0

    @property
    def profile(self) -> Profile:
        """ASDU field sizes of the I-frames given without their own."""
        return self._inner.profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self._inner.profile = profile

    def _clear(self) -> None:
        # the kept APDUs, in order: parts (add_admitted's, and add_apdu's once sealed) and
        # add_apdu's APDUs since the last part (lists, sealed into a part when one follows)
        self._parts: list[_Part] = []
        self._count = 0  # APDUs kept in both
        self._raws: list[bytes] = []
        # (profile, confidence) of the kept I-frames of this batch, by index
        self._pairs: list[tuple[Profile, float | None]] = []
        self._pair_ids: dict[tuple[Profile, float | None], int] = {}
        self._last_pair: tuple[Any, Any, int] = (None, None, -1)
        self._pids: list[int] = []  # index into _pairs, -1 for S- and U-frames
        self._times: list[int | None] = []
        self._frames: list[int | None] = []
        self._eids: list[int] = []
        self._apdus: list[int] = []
        self._fast_rows = 0
        # (columnar APDUs before it, its rows) for each scalar call, in order
        self._marks: list[tuple[int, int]] = []

    @property
    def errors(self) -> int:
        """APDUs and octets that failed to decode (the columnar path takes none of them)."""
        return self._inner.errors

    @property
    def gaps(self) -> int:
        """Capture gaps recorded."""
        return self._inner.gaps

    @property
    def rows(self) -> int:
        """Rows accumulated since the last :meth:`take_batch`."""
        return self._fast_rows + self._inner.rows

    def __len__(self) -> int:
        return self.rows

    # -- recording -------------------------------------------------------------------------

    def _scalar(self, call: Any, *args: Any) -> None:
        """Record through the inner scalar builder, noting where its rows go."""
        inner = self._inner
        inner.next_apdu = self.next_apdu
        before = inner.rows
        call(*args)
        self.next_apdu = inner.next_apdu
        self._marks.append((self._count, inner.rows - before))

    def add_frame(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                  event: Frame, profile: Profile | None = None,
                  confidence: float | None = None) -> None:
        """Rows for one complete APDU; see :meth:`RecordBuilder.add_frame`."""
        self.add_apdu(time_ns, frame, ep, event.raw, event, profile, confidence)

    def add_apdu(self, time_ns: int | None, frame: int | None, ep: Endpoints, raw: bytes,
                 event: Frame | None = None, profile: Profile | None = None,
                 confidence: float | None = None) -> None:
        """Rows for one complete, valid APDU given by its octets (``event``: the framer's
        ``Frame`` of it, when at hand); an I-frame's ASDU is read with ``profile`` (default:
        the builder's), ``confidence`` in [0, 1] or None (given) goes to its rows."""
        if raw[CONTROL_AT] & 1:  # S- or U-frame: one row
            rows = 1
            pid = -1
        else:
            if profile is None:
                profile = self._inner.profile
            last_profile, last_confidence, pid = self._last_pair
            if last_profile is not profile or last_confidence != confidence:
                pair = (profile, confidence)
                pid = self._pair_ids.get(pair, -1)
                if pid < 0:
                    pid = self._pair_ids[pair] = len(self._pairs)
                    self._pairs.append(pair)
                self._last_pair = (profile, confidence, pid)
            layout = header_layout(profile)
            ioa = layout.ioa_size
            n = len(raw)
            body = ASDU_AT + layout.objects_at  # APDU offset of the first object
            size = _SIZES.get(raw[_TYPE_AT]) if n >= body else None
            rows = -1
            if size is not None:
                vsq = raw[_VSQ_AT]
                count = vsq & COUNT_MASK
                if vsq & SQ_BIT and count:
                    if n == body + ioa + count * size and not (
                            int.from_bytes(raw[body:body + ioa], "little") + count - 1
                            ) >> (8 * ioa):
                        rows = count
                elif n == body + count * (ioa + size):
                    rows = count or 1
            if rows < 0:
                if event is None or event.apdu is None:
                    event = Frame(0, raw, decode_apdu(raw))
                self._scalar(self._inner.add_frame, time_ns, frame, ep, event, profile,
                             confidence)
                return
        if ep is not self._last_ep:
            eid = self._endpoint_ids.get(ep)
            if eid is None:
                eid = self._endpoint_ids[ep] = len(self._endpoints)
                self._endpoints.append(ep)
            self._last_ep, self._last_eid = ep, eid
        self._raws.append(raw)
        self._pids.append(pid)
        self._times.append(time_ns)
        self._frames.append(frame)
        self._eids.append(self._last_eid)
        self._apdus.append(self.next_apdu)
        self.next_apdu += 1
        self._count += 1
        self._fast_rows += rows

    def _seal(self) -> None:
        """Make add_apdu's APDUs since the last part a part."""
        raws = self._raws
        if raws:
            lens = np.fromiter(map(len, raws), np.int64, len(raws))
            self._parts.append(_Part(b"".join(raws), np.cumsum(lens) - lens, lens, self._times,
                                     self._frames, self._eids, self._pids, self._apdus))
            self._raws, self._times, self._frames = [], [], []
            self._eids, self._pids, self._apdus = [], [], []

    def admit(self, octets: bytes, s: np.ndarray, lens: np.ndarray, groups: np.ndarray,
              keys: list[tuple[Endpoints, Profile | None, float | None]],
              ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`add_apdu`'s admission of many APDUs at once (the fast lane).

        Args:
            octets: where the APDUs lie.
            s, lens: each APDU's start in ``octets`` and length (int64; at least one
                octet each; octets that are no APDU give meaningless answers, for the
                caller to override).
            groups: per APDU, an index into ``keys``.
            keys: ``(endpoints, profile, confidence)`` as :meth:`add_apdu` takes them
                (profile None: the builder's).

        Returns:
            Per APDU: its row count, or -1 for an APDU the columnar stage does not decode
            (give it to :meth:`add_apdu`, which records it on the scalar path); whether it
            is an I-frame.
        """
        layouts = [header_layout(self._inner.profile if p is None else p)
                   for _ep, p, _c in keys]
        a = np.frombuffer(octets, np.uint8)
        last = len(a) - 1
        is_i = (a[np.minimum(s + CONTROL_AT, last)] & 1) == 0
        # the rules of add_apdu, by column (octets past an APDU are read, then masked)
        body = (ASDU_AT + np.array([h.objects_at for h in layouts], np.int64))[groups]
        ioa = np.array([h.ioa_size for h in layouts], np.int64)[groups]
        size = _SIZE_OF[a[np.minimum(s + _TYPE_AT, last)]]
        vsq = a[np.minimum(s + _VSQ_AT, last)].astype(np.int64)
        count = vsq & COUNT_MASK
        seq = ((vsq & SQ_BIT) != 0) & (count > 0)
        first = np.zeros(len(s), np.int64)  # the first address (SQ=1)
        for i in range(3):
            first |= np.where(ioa > i, a[np.minimum(s + body + i, last)].astype(np.int64)
                              << (8 * i), 0)
        fits = np.where(seq, (lens == body + ioa + count * size)
                        & ((first + count - 1) >> (8 * ioa) == 0),
                        lens == body + count * (ioa + size))
        ok = (lens >= body) & (size >= 0) & fits
        rows = np.where(is_i, np.where(ok, np.where(seq, count, np.maximum(count, 1)), -1), 1)
        return rows, is_i

    def add_admitted(self, octets: bytes, s: np.ndarray, lens: np.ndarray,
                     times: np.ndarray, frames: np.ndarray, groups: np.ndarray,
                     keys: list[tuple[Endpoints, Profile | None, float | None]],
                     is_i: np.ndarray, rows: np.ndarray) -> None:
        """Record APDUs that :meth:`admit` admitted (rows >= 0), in this order: what
        :meth:`add_apdu` records for each, at once (``times``, ``frames``: int64, or
        object arrays where some are None)."""
        eid_of = np.empty(len(keys), np.int64)
        pid_of = np.empty(len(keys), np.int64)
        for g, (ep, profile, confidence) in enumerate(keys):
            eid = self._endpoint_ids.get(ep)
            if eid is None:
                eid = self._endpoint_ids[ep] = len(self._endpoints)
                self._endpoints.append(ep)
            pair = (self._inner.profile if profile is None else profile, confidence)
            pid = self._pair_ids.get(pair, -1)
            if pid < 0:
                pid = self._pair_ids[pair] = len(self._pairs)
                self._pairs.append(pair)
            eid_of[g], pid_of[g] = eid, pid
        n = len(s)
        self._seal()
        self._parts.append(_Part(octets, s, lens, times, frames, eid_of[groups],
                                 np.where(is_i, pid_of[groups], -1),
                                 np.arange(self.next_apdu, self.next_apdu + n)))
        self._count += n
        self.next_apdu += n
        self._fast_rows += int(rows.sum())

    def add_malformed(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        """One row for octets that are no valid APDU (scalar path)."""
        self._scalar(self._inner.add_malformed, time_ns, frame, ep, event)

    def add_gap(self, time_ns: int | None, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        """One row for octets missing from the capture (scalar path)."""
        self._scalar(self._inner.add_gap, time_ns, frame, ep, missing, detail)

    def add_event(self, time_ns: int | None, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        """One row for a connection event (scalar path); see RecordBuilder.add_event."""
        self._scalar(self._inner.add_event, time_ns, frame, ep, text, raw)

    # -- decoding --------------------------------------------------------------------------

    def take_batch(self) -> pa.RecordBatch:
        """The rows so far as a RecordBatch; the builder starts empty again."""
        self._seal()
        parts, pairs, marks = self._parts, self._pairs, self._marks
        self._clear()
        if not parts:
            return self._inner.take_batch()
        a, s, lens = _joined(parts)
        times = pa.concat_arrays([array(p.times, pa.int64()) for p in parts])
        frames = pa.concat_arrays([array(p.frames, pa.int64()) for p in parts])
        eids, pids, apdus = (np.concatenate([np.asarray(getattr(p, name), np.int64)
                                             for p in parts])
                             for name in ("eids", "pids", "apdus"))
        n = len(s)
        fast, row_apdu, odd = _decode(a, s, lens, times, frames, eids, apdus,
                                      self._endpoints, pids, pairs)
        if not marks and not odd.size:
            return fast
        # rows of each columnar APDU start at fast_start[j] in `fast`
        counts = np.bincount(row_apdu, minlength=n)
        fast_start = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=fast_start[1:])
        # scalar rows before each columnar APDU j (inner calls noted before it)
        mark_at = np.array([m for m, _ in marks], np.int64)
        mark_rows = np.array([r for _, r in marks], np.int64)
        before = np.zeros(n + 1, np.int64)
        np.add.at(before, mark_at, mark_rows)
        before = np.cumsum(before)
        pieces = []
        positions = []
        keep = np.ones(len(row_apdu), bool)
        if odd.size:
            # APDUs whose time tags need the scalar path's texts: decode them again there
            redo = RecordBuilder(self.profile)
            for j in odd.tolist():
                redo.next_apdu = int(apdus[j])
                raw = a[s[j]:s[j] + lens[j]].tobytes()
                pid = int(pids[j])
                profile, confidence = pairs[pid] if pid >= 0 else (None, None)
                redo.add_frame(times[j].as_py(), frames[j].as_py(),
                               self._endpoints[eids[j]], Frame(0, raw, decode_apdu(raw)),
                               profile, confidence)
                keep[fast_start[j]:fast_start[j + 1]] = False
            pieces.append(redo.take_batch())
            positions.append(np.concatenate([
                np.arange(fast_start[j], fast_start[j + 1]) + before[j] for j in odd.tolist()]))
        if marks:
            inner = self._inner.take_batch()
            # the k-th call's rows start after the columnar rows before it and the scalar
            # rows of the calls before it
            pieces.append(inner)
            positions.append(np.repeat(fast_start[mark_at], mark_rows) + np.arange(len(inner)))
        kept = np.flatnonzero(keep)
        pieces.insert(0, fast.take(array(kept)) if len(kept) != len(keep) else fast)
        positions.insert(0, kept + before[row_apdu[kept]])
        order = np.empty(sum(len(p) for p in positions), np.int64)
        order[np.concatenate(positions)] = np.arange(len(order))
        table = pa.Table.from_batches(pieces, schema=SCHEMA).take(array(order))
        return table.combine_chunks().to_batches()[0] if len(table) else \
            RecordBuilder(self.profile).take_batch()


# -- the vectorised decoder ----------------------------------------------------------------


def _joined(parts: list[_Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The octets of the parts as one array (each distinct ``octets`` once: the fast lane's
    parts of one flush share them), and each APDU's start in it and length."""
    if len(parts) == 1:
        (part,) = parts
        return np.frombuffer(part.octets, np.uint8), part.starts, part.lens
    buffers: list[bytes] = []
    shifts: list[int] = []
    size = 0
    for part in parts:
        if not buffers or part.octets is not buffers[-1]:
            buffers.append(part.octets)
            size += len(part.octets)
        shifts.append(size - len(part.octets))
    return (np.frombuffer(b"".join(buffers), np.uint8),
            np.concatenate([p.starts + shift for p, shift in zip(parts, shifts)]),
            np.concatenate([p.lens for p in parts]))


def _le(a: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """Little-endian unsigned integers of ``width`` octets at offsets ``at`` (int64)."""
    out = np.zeros(len(at), np.int64)
    for i in range(width):
        out |= a[at + i].astype(np.int64) << (8 * i)
    return out


def _le_by(a: np.ndarray, at: np.ndarray, widths: np.ndarray | int) -> np.ndarray:
    """:func:`_le` with a width per offset (octets past a width are not read: the last
    field of the last APDU may end the buffer), or one for all."""
    if isinstance(widths, int):
        return _le(a, at, widths)
    out = np.zeros(len(at), np.int64)
    for i in range(int(widths.max(initial=0))):
        inside = widths > i
        out |= np.where(inside, a[np.where(inside, at + i, at)].astype(np.int64) << (8 * i), 0)
    return out


def _per(values: np.ndarray | int, index: np.ndarray) -> np.ndarray | int:
    """``values[index]`` of a header field per APDU, or the one value of all APDUs."""
    return values if isinstance(values, int) else values[index]


def _bools(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return array(values.astype(bool), pa.bool_(), mask=null)


def _decode(a: np.ndarray, s: np.ndarray, lens: np.ndarray, times: pa.Array,
            frames: pa.Array, eids: np.ndarray, apdus: np.ndarray, endpoints: list[Endpoints],
            pids: np.ndarray, pairs: list[tuple[Profile, float | None]],
            ) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray]:
    """Decode valid APDUs (as :meth:`ColumnarBuilder.add_apdu` admits them) by column:
    APDU ``j`` is ``a[s[j]:s[j] + lens[j]]`` (int64 offsets, in any order); ``times`` and
    ``frames`` (int64, null: none) and the int64 arrays are per APDU; ``pairs[pids[j]]`` is
    the (profile, confidence) of I-frame ``j`` (pid -1: S, U).

    Returns the batch, the APDU of each row (index into ``s``) and the indices of the
    APDUs to decode again on the scalar path (time tags with error texts).
    """
    n = len(s)
    # header layouts per APDU (the codec's; S- and U-frames: the first pair's, never read)
    pid = np.asarray(pids, np.int64)
    layouts = [header_layout(p) for p, _c in pairs] or [header_layout()]
    fields = np.array([(-1 if h.oa_at is None else h.oa_at, h.ca_at, h.ca_size, h.objects_at,
                        h.ioa_size) for h in layouts], np.int64)
    if (fields == fields[0]).all():  # one layout (the rule): numbers, not arrays, for all
        oa_at, ca_at, ca_size, objects_at, ioa_by_apdu = fields[0].tolist()
    else:
        oa_at, ca_at, ca_size, objects_at, ioa_by_apdu = fields[np.maximum(pid, 0)].T

    # APCI
    c1 = a[s + CONTROL_AT].astype(np.int64)
    is_i = (c1 & 1) == 0
    is_u = (c1 & 3) == 3
    apci_code = np.where(is_i, 0, np.where(is_u, 2, 1))
    ctrl = _le(a, s + CONTROL_AT, 4)
    ssn = (ctrl & 0xFFFF) >> 1
    rsn = (ctrl >> 16) >> 1

    # data unit identifier (I-frames; the others read harmless octets of their own APDU
    # where they have them, and are masked)
    ii = np.flatnonzero(is_i)
    apdu_at = s[ii]
    type_id = np.zeros(n, np.int64)
    vsq = np.zeros(n, np.int64)
    cot = np.zeros(n, np.int64)
    oa = np.zeros(n, np.int64)
    ca = np.zeros(n, np.int64)
    type_id[ii] = a[apdu_at + _TYPE_AT]
    vsq[ii] = a[apdu_at + _VSQ_AT]
    cot[ii] = a[apdu_at + _COT_AT]
    # (an I-frame here has its whole identifier)
    oa_at_i = _per(oa_at, ii)
    oa[ii] = np.where(oa_at_i >= 0, a[apdu_at + ASDU_AT + np.maximum(oa_at_i, 0)], 0)
    ca[ii] = _le_by(a, apdu_at + ASDU_AT + _per(ca_at, ii), _per(ca_size, ii))
    count = vsq & COUNT_MASK
    sq = (vsq & SQ_BIT) != 0

    # rows
    rows = np.where(is_i, np.maximum(count, 1), 1)
    row_apdu = np.repeat(np.arange(n), rows)
    nr = len(row_apdu)
    row_first = np.cumsum(rows) - rows
    obj = np.arange(nr) - row_first[row_apdu]
    has_obj = (is_i & (count > 0))[row_apdu]

    # objects
    oi = np.flatnonzero(has_obj)
    ap = row_apdu[oi]
    k = obj[oi]
    t = type_id[ap]
    size = _SIZE_OF[t]
    body = s[ap] + ASDU_AT + _per(objects_at, ap)
    seq = sq[ap]
    ioa_size = _per(ioa_by_apdu, ap)
    ioa_at = np.where(seq, body, body + k * (ioa_size + size))
    address = _le_by(a, ioa_at, ioa_size)
    address = np.where(seq, address + k, address)
    e = np.where(seq, body + ioa_size + k * size, ioa_at + ioa_size)

    no = len(oi)
    number = np.zeros(no, np.float64)
    number_null = np.ones(no, bool)
    text_index = np.full(no, -1, np.int64)
    texts: list[pa.Array] = []
    # quality flags where the quality descriptor has them (IV 0x80 NT 0x40 SB 0x20 BL 0x10
    # OV 0x01), and which of them an object has (the others are null): one octet each,
    # turned into the five columns once
    qual = np.zeros(no, np.uint8)
    qual_has = np.zeros(no, np.uint8)
    select = np.zeros(no, bool)
    select_null = np.ones(no, bool)
    qualifier = np.zeros(no, np.int64)
    qualifier_null = np.ones(no, bool)
    tag = np.zeros(no, np.int64)
    tag_iv = np.zeros(no, bool)
    tag_null = np.ones(no, bool)
    odd_rows = np.zeros(no, bool)
    time_ref = times
    for tid in np.flatnonzero(np.bincount(t, minlength=256)).tolist():
        layout, _size, tsize = _LAID_OUT[tid]
        m = np.flatnonzero(t == tid)
        at = e[m]
        _values(a, at, layout, tid, m, number, number_null, text_index, texts)
        if layout.quality_at is not None:
            qual[m] = a[at + layout.quality_at] & layout.quality_mask
            qual_has[m] = _QUALITY_ALL
        elif layout.kind is ValueKind.COUNTER:
            flags = a[at + layout.value_at + layout.value_width - 1]
            qual[m] = (flags & 0x80) | ((flags & 0x20) >> 5)  # IV; CY in the OV column
            qual_has[m] = 0x81
        if layout.select_at is not None:
            select[m] = (a[at + layout.select_at] & 0x80) != 0
            select_null[m] = False
        if layout.qualifier_at is not None:
            qualifier[m] = (a[at + layout.qualifier_at] >> layout.qualifier_shift) \
                & layout.qualifier_mask
            qualifier_null[m] = False
        if tsize:
            ns, iv, odd = _time_tags(a, at + layout.size, tsize, ap[m], time_ref)
            tag[m], tag_iv[m], odd_rows[m] = ns, iv, odd
            tag_null[m] = False

    # APDU-level columns, repeated per row. The integers fit their columns' types by
    # construction (fields of a few octets), so numpy converts them (Arrow's cast checks
    # every value), before they are repeated (a gather of 16-bit values costs a third of
    # one of 64-bit values).
    # With one row per APDU (S- and U-frames, single objects) the row index is the identity.
    identity = nr == n
    row_index = array(row_apdu)

    def per_row(values: np.ndarray, dtype: type) -> np.ndarray:
        return values.astype(dtype) if identity else values.astype(dtype)[row_apdu]

    def by_row(column: pa.Array) -> pa.Array:
        return column if identity else column.take(row_index)

    ep_cols = list(zip(*endpoints))
    u_row = per_row(is_u, np.bool_)
    su_row = ~per_row(is_i, np.bool_)
    eid_arr = array(per_row(np.asarray(eids), np.int32))
    type_arr = array(per_row(type_id, np.int16), mask=su_row)
    cause_arr = array(per_row(cot & CAUSE_MASK, np.int16), mask=su_row)

    def obj_col(values: np.ndarray, dtype: type, null: np.ndarray, fill: Any = 0,
                arrow: pa.DataType | None = None) -> pa.Array:
        out = np.full(nr, fill, dtype)
        out[oi] = values
        mask = np.ones(nr, bool)
        mask[oi] = null
        return array(out, arrow, mask=mask)

    qual_row = np.zeros(nr, np.uint8)
    qual_row[oi] = qual
    qual_has_row = np.zeros(nr, np.uint8)
    qual_has_row[oi] = qual_has
    text_codes = np.full(nr, -1, np.int64)
    text_codes[oi] = text_index
    texts_all = pa.concat_arrays(texts) if texts else array([], pa.string())
    columns: dict[str, pa.Array] = {
        "time": by_row(time_ref).cast(SCHEMA.field("time").type),
        "frame": by_row(frames),
        "stream": array(ep_cols[0], pa.int32()).take(eid_arr),
        "direction": array(ep_cols[1], pa.string()).take(eid_arr),
        "src": array(ep_cols[2], pa.string()).take(eid_arr),
        "sport": array(ep_cols[3], pa.int32()).take(eid_arr),
        "dst": array(ep_cols[4], pa.string()).take(eid_arr),
        "dport": array(ep_cols[5], pa.int32()).take(eid_arr),
        "apdu": array(per_row(np.asarray(apdus), np.int64)),
        "apci": _APCI.take(array(per_row(apci_code, np.int8))),
        "u_func": _U_NAMES.take(array(per_row(_U_CODES[c1], np.int8), mask=~u_row)),
        "ssn": array(per_row(ssn, np.int32), mask=su_row),
        "rsn": array(per_row(rsn, np.int32), mask=u_row),
        "type_id": type_arr,
        "type_name": _TYPE_NAMES.take(type_arr),
        "sq": array(per_row(sq, np.bool_), mask=su_row),
        "num_objects": array(per_row(count, np.int16), mask=su_row),
        "cot": cause_arr,
        "cot_name": _CAUSE_NAMES.take(cause_arr),
        "negative": array(per_row((cot & NEGATIVE_BIT) != 0, np.bool_), mask=su_row),
        "test": array(per_row((cot & TEST_BIT) != 0, np.bool_), mask=su_row),
        "oa": array(per_row(oa, np.int16), mask=su_row),
        "ca": array(per_row(ca, np.int32), mask=su_row),
        "obj": obj_col(k, np.int16, np.zeros(no, bool)),
        "ioa": obj_col(address, np.int32, np.zeros(no, bool)),
        "value": obj_col(number, np.float64, number_null),
        "value_text": texts_all.take(array(text_codes, mask=text_codes < 0)),
        **{name: _bools((qual_row & bit) != 0, (qual_has_row & bit) == 0)
           for name, bit in _QUALITY_BITS},
        "ei": pa.nulls(nr, pa.bool_()),  # protection quality only (scalar path)
        "time_tag": obj_col(tag, np.int64, tag_null, arrow=SCHEMA.field("time_tag").type),
        "time_tag_iv": obj_col(tag_iv, np.bool_, tag_null, False),
        "select": obj_col(select, np.bool_, select_null, False),
        "qualifier": obj_col(qualifier, np.int16, qualifier_null),
        "raw": by_row(_raw_column(a, s, lens)),
        "error": pa.nulls(nr, pa.string()),
        "kind": _KINDS.take(array(has_obj.astype(np.int8))),
        **_profile_columns(per_row(pid, np.int32), pairs),
    }
    batch = pa.RecordBatch.from_arrays([columns[name] for name in SCHEMA.names], schema=SCHEMA)
    odd_apdus = np.unique(ap[odd_rows]) if odd_rows.any() else np.zeros(0, np.int64)
    return batch, row_apdu, odd_apdus


def _profile_columns(pid: np.ndarray, pairs: list[tuple[Profile, float | None]],
                     ) -> dict[str, pa.Array]:
    """The ``profile`` and ``profile_confidence`` cells of rows whose APDU has pair ``pid``
    (-1: S- and U-frames, null)."""
    if len(pairs) == 1:  # one profile and confidence (the rule): built, not taken
        ((profile, confidence),) = pairs
        null = pid < 0
        return {
            "profile": _constant_text(profile_text(profile), null),
            "profile_confidence": (
                pa.nulls(len(pid), SCHEMA.field("profile_confidence").type)
                if confidence is None else
                array(np.full(len(pid), confidence, np.float64),
                      SCHEMA.field("profile_confidence").type, mask=null)),
        }
    index = array(pid, mask=pid < 0)
    return {
        "profile": array([profile_text(p) for p, _c in pairs], pa.string()).take(index),
        "profile_confidence": array([c for _p, c in pairs],
                                       SCHEMA.field("profile_confidence").type).take(index),
    }


def _constant_text(text: str, null: np.ndarray) -> pa.Array:
    """A string array of ``text`` where ``null`` is False, null elsewhere (a fifth of the
    CPU of a take from a one-text array)."""
    octets = text.encode()
    n = len(null)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.where(null, 0, len(octets)), out=offsets[1:])
    nulls = int(np.count_nonzero(null))
    validity = pa.py_buffer(np.packbits(~null, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(octets * (n - nulls))],
                                 null_count=nulls)


def _raw_column(a: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> pa.Array:
    """The APDUs ``a[starts[j]:starts[j] + lens[j]]`` (not overlapping) as a binary array:
    over ``a`` as it is when each starts where the one before ends (one direction), else
    taken (Arrow's ``take``: a copy per value in C; a numpy gather of the octets costs
    tens of times more) from the array of all of them in the order of ``a`` and of the
    octets between them (the fast lane interleaves directions, and its flushes' octets
    hold the events of the scalar path too)."""
    n = len(lens)
    if not (starts[1:] != starts[:-1] + lens[:-1]).any():
        offsets = np.append(starts, starts[-1] + lens[-1]).astype(np.int32)
        return pa.Array.from_buffers(pa.binary(), n,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(a)])
    order = np.argsort(starts, kind="stable")
    offsets = np.empty(2 * n, np.int32)  # APDU, octets up to the next, APDU, ..., APDU
    offsets[0::2] = starts[order]
    offsets[1::2] = starts[order] + lens[order]
    spans = pa.Array.from_buffers(pa.binary(), 2 * n - 1,
                                  [None, pa.py_buffer(offsets), pa.py_buffer(a)])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(0, 2 * n, 2)
    return spans.take(array(rank))


def _values(a: np.ndarray, at: np.ndarray, layout: Layout, type_id: int, m: np.ndarray,
            number: np.ndarray, number_null: np.ndarray, text_index: np.ndarray,
            texts: list[pa.Array]) -> None:
    """Numbers (vectorised, from the layout) and texts (the scalar codec's, once per
    distinct value octets) of the objects ``m`` of one type, elements at ``at``."""
    kind = layout.kind
    if kind is ValueKind.NONE:
        return
    width = layout.value_width
    raw = _le(a, at + layout.value_at, width)
    number[m] = _numbers(raw, layout)
    number_null[m] = False
    keys, inverse = _distinct(raw, width)
    base = sum(len(t) for t in texts)
    if kind in _PLAIN_NUMBERS:
        pieces, where = _number_texts(_numbers(keys, layout), kind is ValueKind.SCALED)
        texts += pieces
        text_index[m] = base + where[inverse]
        return
    # the other texts: decode each distinct value once with the scalar codec
    decode = ELEMENTS[type_id].decode_untimed
    element = bytearray(layout.size)
    out = []
    for key in keys.tolist():
        element[layout.value_at:layout.value_at + width] = key.to_bytes(width, "little")
        out.append(value_text(decode(element, 0)[0]))
    texts.append(array(out, pa.string()))
    text_index[m] = base + inverse


def _numbers(raw: np.ndarray, layout: Layout) -> np.ndarray:
    """The ``value`` cells (float64) of value octets ``raw`` (little-endian, int64)."""
    kind = layout.kind
    if kind is ValueKind.CODE:
        return ((raw >> layout.value_shift) & layout.value_mask).astype(np.float64)
    if kind is ValueKind.STEP:
        step = raw & layout.value_mask
        return np.where(step & 0x40, step - 128, step).astype(np.float64)
    if kind in (ValueKind.UINT16, ValueKind.UINT32):
        return raw.astype(np.float64)
    if kind is ValueKind.NORMALIZED:
        return raw.astype(np.uint16).view(np.int16) / 32768
    if kind is ValueKind.SCALED:
        return raw.astype(np.uint16).view(np.int16).astype(np.float64)
    if kind is ValueKind.FLOAT:
        with np.errstate(invalid="ignore"):  # signalling NaNs stay NaNs, as in struct
            return raw.astype(np.uint32).view(np.float32).astype(np.float64)
    assert kind is ValueKind.COUNTER
    return (raw & 0xFFFFFFFF).astype(np.uint32).view(np.int32).astype(np.float64)


def _distinct(raw: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``raw`` (int64 in [0, 2**(8 * width))), in no particular
    order, and the index of each value among them.

    ``np.unique`` sorts (about 3 ms for 35k values): values of up to two octets are counted
    instead, wider ones hashed by Arrow (a third of the sort's CPU; 32-bit keys hash a
    tenth faster than 64-bit ones).
    """
    if width <= 2:
        keys = np.flatnonzero(np.bincount(raw))
        where = np.empty(int(keys[-1]) + 1, np.int64)
        where[keys] = np.arange(len(keys))
        return keys, where[raw]
    encoded = pc.dictionary_encode(array(raw.astype(np.uint32) if width <= 4 else raw))
    return to_numpy(encoded.dictionary), to_numpy(encoded.indices)


# Arrow's double-to-text cast (arrow/util/formatting.cc: double-conversion's ToShortest with
# decimal_in_shortest_low -6, high 10) writes an exponent for magnitudes from 1e10 up and
# below 1e-6; repr() does from 1e16 up and below 1e-4
_PLAIN_TEXT_LOW, _PLAIN_TEXT_HIGH = 1e-4, 1e10


def _number_texts(numbers: np.ndarray, scaled: bool) -> tuple[list[pa.Array], np.ndarray]:
    """``value_text()`` of float, normalized and scaled values: ``repr()`` of the number
    (the Python float of the octets, or the int of a scaled value).

    Returns the texts (one or two string arrays, to be concatenated) and the index of each
    number's text among them. Arrow's cast to string writes the same shortest round-trip
    digits as ``repr()`` for non-integral numbers of magnitude in [1e-4, 1e10); integral
    numbers (``repr()`` has a ``.0``), the others, NaN and infinities take ``repr()`` itself,
    after the cast ones (rather than replaced among them: a copy of every text).
    """
    n = len(numbers)
    if scaled:  # str(int) == repr(int)
        return [array(numbers.astype(np.int64)).cast(pa.string())], np.arange(n)
    magnitude = np.abs(numbers)
    with np.errstate(invalid="ignore"):
        cast = (np.isfinite(numbers) & (numbers != np.floor(numbers))
                & (magnitude >= _PLAIN_TEXT_LOW) & (magnitude < _PLAIN_TEXT_HIGH))
    if cast.all():
        return [array(numbers).cast(pa.string())], np.arange(n)
    where = np.empty(n, np.int64)
    k = int(np.count_nonzero(cast))
    where[cast] = np.arange(k)
    where[~cast] = np.arange(k, n)
    return [array(numbers[cast]).cast(pa.string()),
            array(list(map(repr, numbers[~cast].tolist())), pa.string())], where


def _time_tags(a: np.ndarray, at: np.ndarray, size: int, apdu: np.ndarray,
               time_ref: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTC ns, IV bit and "needs the scalar path" of the tags at ``at`` (see
    :func:`~.builder.time_tag_ns`)."""
    ms = _le(a, at, 2)
    b2 = a[at + 2].astype(np.int64)
    minutes = b2 & 0x3F
    iv = (b2 & 0x80) != 0
    if size == 3:
        ref_null = to_numpy(time_ref.is_null().take(array(apdu)))
        ref = to_numpy(pc.fill_null(time_ref, _ZERO).take(array(apdu)))
        hour = ref - ref % (3600 * _NS)
        ns = hour + (minutes * 60_000 + ms) * 1_000_000
        ns = np.where(ns > ref + 60 * _NS, ns - 3600 * _NS, ns)
        odd = ref_null | (minutes > 59) | (ms > 59999)
        return ns, iv, odd
    hours = (a[at + 3] & 0x1F).astype(np.int64)
    day = (a[at + 4] & 0x1F).astype(np.int64)
    month = ((a[at + 6] & 0x7F).astype(np.int64) << 4) | (a[at + 5] & 0x0F)
    odd = ((ms > 59999) | (minutes > 59) | (hours > 23) | (day < 1)
           | (day > _MONTH_LENGTH[month]))
    days = _MONTH_BEFORE[month] + day
    ns = ((days * 86400 + hours * 3600 + minutes * 60) * _NS + ms * 1_000_000)
    return np.where(odd, 0, ns), iv, odd
