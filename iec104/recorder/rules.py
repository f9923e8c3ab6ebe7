"""Proxy rules: drop, rewrite or duplicate chosen ASDUs, keeping both peers' N(S)/N(R) right.

Theory of operation
-------------------
Without rules the proxy forwards bytes untouched and never looks at them before they are
sent. With rules, each direction of a connection goes through a :class:`Rewriter`: a
:class:`~iec104.codec.Framer` cuts the stream into APDUs and each one is forwarded as
soon as it is complete (an incomplete APDU waits for its last octet). Malformed octets,
U-frames, and I-frames no rule matches are forwarded as received unless their sequence
numbers need translating.

An I-frame a rule matches is decoded (:func:`~iec104.codec.decode_asdu`) and replaced by
what the rule returns: nothing (drop), one ASDU (rewrite) or several (duplicate/insert).
Dropping or inserting I-frames makes the two ends of a direction count differently, so
every later frame is renumbered with one :class:`SeqMap` per direction:

* N(S) of a frame from the source is forwarded as ``N(S) + delta`` where ``delta`` is
  (I-frames inserted - I-frames dropped) so far in that direction.
* N(R) in frames going back to the source acknowledges in the destination's numbering;
  it is translated to the source's numbering: everything up to the first forwarded frame
  the destination has not yet acknowledged, so a dropped frame counts as acknowledged as
  soon as every frame before it is. Frames the proxy inserted are acknowledged by the
  destination and the proxy absorbs those acknowledgements.
* A dropped I-frame that nothing would ever acknowledge (everything before it already
  was) is acknowledged to its source at once by an S-frame from the proxy, so the
  source's t1 does not expire.

N(R) values sent to a source therefore never decrease, and a destination never sees a gap
in N(S). Nothing is renumbered until a rule first drops or inserts a frame on a
connection.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ..codec import (
    ASDU,
    DEFAULT_PROFILE,
    NEED_DATA,
    DecodeError,
    EncodeError,
    Framer,
    IFrame,
    InformationObject,
    Malformed,
    Profile,
    SFrame,
    decode_asdu,
    encode_apdu,
    encode_asdu,
    seq_add,
    seq_diff,
    to_cause,
    type_name,
)
from ..codec.constants import TypeId
from ..codec.errors import Iec104Error

__all__ = ["RewriteResult", "Rewriter", "Rule", "RuleError", "SeqMap", "parse_rule"]

Direction = Literal["c2s", "s2c"]
RuleFunction = Callable[[ASDU, str], "Sequence[ASDU | bytes] | None"]


class RuleError(Iec104Error, ValueError):
    """A rule specification that cannot be understood."""


_HEADER_FIELDS = {"cot": "cause", "cause": "cause", "negative": "negative", "pn": "negative",
                  "test": "test", "oa": "originator", "originator": "originator",
                  "ca": "common_address", "common_address": "common_address"}
_OBJECT_FIELDS = {"ioa": "address", "address": "address", "value": "value",
                  "select": "select", "qualifier": "qualifier"}


@dataclass
class Rule:
    """Match I-frames by their ASDU and replace them.

    Args:
        action: ``"drop"``, ``"rewrite"`` (apply ``changes``), ``"duplicate"`` (forward
            the ASDU twice: tests insertion) or a function ``f(asdu, direction)`` returning
            the ASDUs (or encoded ASDU bytes) to send instead, ``[]`` to drop, or ``None``
            to leave the frame alone.
        direction: ``"c2s"`` (master to outstation), ``"s2c"`` or None for both.
        type_id: type identification to match (int or ``TypeId``), None for any.
        ca: common address to match, None for any.
        ioa: match ASDUs having an object with this address; with ``"rewrite"`` the object
            changes apply to those objects only. A drop always drops the whole ASDU.
        cot: cause of transmission to match, None for any.
        changes: for ``"rewrite"``: header fields ``cot``, ``negative``, ``test``, ``oa``,
            ``ca`` and object fields ``ioa``, ``value`` (converted to the type of the value
            it replaces), ``select``, ``qualifier``.
        limit: apply at most this many times (None: every time).
        name: shown in the log (default: a description of the rule).

    Attributes:
        applied: how many times the rule fired.
    """

    action: str | RuleFunction
    direction: str | None = None
    type_id: int | None = None
    ca: int | None = None
    ioa: int | None = None
    cot: int | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    name: str = ""
    applied: int = 0

    def __post_init__(self) -> None:
        if not callable(self.action) and self.action not in ("drop", "rewrite", "duplicate"):
            raise RuleError(f"unknown action {self.action!r} (drop, rewrite, duplicate "
                            "or a function)")
        if self.direction not in (None, "c2s", "s2c"):
            raise RuleError(f"direction {self.direction!r} is not 'c2s' or 's2c'")
        for key in self.changes:
            if key not in _HEADER_FIELDS and key not in _OBJECT_FIELDS:
                raise RuleError(f"cannot change {key!r}; fields: "
                                f"{', '.join(sorted({*_HEADER_FIELDS, *_OBJECT_FIELDS}))}")
        if self.action == "rewrite" and not self.changes:
            raise RuleError("a rewrite rule needs changes")
        if not self.name:
            self.name = self._describe()

    def _describe(self) -> str:
        action = self.action if isinstance(self.action, str) else getattr(
            self.action, "__name__", "function")
        parts = [f"{k}={v}" for k, v in (("dir", self.direction), (
            "type", type_name(self.type_id) if self.type_id is not None else None),
            ("ca", self.ca), ("ioa", self.ioa), ("cot", self.cot)) if v is not None]
        text = f"{action} {','.join(parts) or 'all'}"
        if self.changes:
            text += ":" + ",".join(f"{k}={v}" for k, v in self.changes.items())
        return text

    def matches(self, direction: str, asdu: ASDU) -> bool:
        """Whether the rule applies to this ASDU sent in ``direction``."""
        if self.limit is not None and self.applied >= self.limit:
            return False
        if self.direction is not None and self.direction != direction:
            return False
        if self.type_id is not None and asdu.type_id != self.type_id:
            return False
        if self.ca is not None and asdu.common_address != self.ca:
            return False
        if self.cot is not None and asdu.cause != self.cot:
            return False
        return not (self.ioa is not None and not any(o.address == self.ioa for o in asdu.objects))

    def apply(self, direction: str, asdu: ASDU) -> Sequence[ASDU | bytes] | None:
        """What to send instead of ``asdu`` (None: unchanged)."""
        action = self.action
        if callable(action):
            return action(asdu, direction)
        if action == "drop":
            return []
        if action == "duplicate":
            return [asdu, asdu]
        return [self._rewrite(asdu)]

    def _rewrite(self, asdu: ASDU) -> ASDU:
        header: dict[str, Any] = {}
        obj_changes: dict[str, Any] = {}
        for key, value in self.changes.items():
            if key in _HEADER_FIELDS:
                header[_HEADER_FIELDS[key]] = value
            else:
                obj_changes[_OBJECT_FIELDS[key]] = value
        if "cause" in header:
            header["cause"] = to_cause(int(header["cause"]))
        for flag in ("negative", "test"):
            if flag in header:
                header[flag] = _to_bool(header[flag])
        for num in ("originator", "common_address"):
            if num in header:
                header[num] = int(header[num])
        objects = asdu.objects
        if obj_changes:
            objects = tuple(_change_object(o, obj_changes)
                            if self.ioa is None or o.address == self.ioa else o
                            for o in objects)
        return asdu._replace(objects=objects, **header)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise RuleError(f"{value!r} is not a boolean")
    return bool(value)


def _change_object(obj: InformationObject, changes: dict[str, Any]) -> InformationObject:
    new: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "address":
            new[key] = int(value)
        elif key == "select":
            new[key] = _to_bool(value)
        elif key == "qualifier":
            new[key] = int(value)
        else:
            new[key] = _convert_value(obj.value, value)
    return obj._replace(**new)


def _convert_value(old: Any, value: Any) -> Any:
    """``value`` as the same kind of value as ``old`` (enum, or NamedTuple with .value)."""
    if old is None:
        raise RuleError("this type carries no value to change")
    if isinstance(old, int):  # IntEnum values (single, double, regulating) and plain ints
        number = int(float(value)) if isinstance(value, str) else int(value)
        return type(old)(number)
    if hasattr(old, "_replace") and "value" in getattr(old, "_fields", ()):
        kind = type(old.value)
        return old._replace(value=kind(float(value)) if kind is float else kind(int(
            float(value)) if isinstance(value, str) else value))
    raise RuleError(f"cannot set the value of a {type(old).__name__}")


def parse_rule(action: str, spec: str) -> Rule:
    """A rule from the command line form ``KEY=VALUE,...[:FIELD=VALUE,...]``.

    Match keys: ``dir`` (c2s/s2c), ``type`` (mnemonic or number), ``ca``, ``ioa``,
    ``cot``, ``limit``. After ``:`` (rewrite only) the changes, see :class:`Rule`.

    Example: ``parse_rule("rewrite", "type=C_SE_NC_1,ioa=200:value=0")``.
    """
    match_part, _, change_part = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for key, value in _pairs(match_part):
        if key == "dir":
            kwargs["direction"] = value
        elif key == "type":
            kwargs["type_id"] = _type_id(value)
        elif key in ("ca", "ioa", "cot", "limit"):
            try:
                kwargs[key] = int(value, 0)
            except ValueError:
                raise RuleError(f"{key}={value!r}: not an integer") from None
        else:
            raise RuleError(f"unknown match key {key!r} (dir, type, ca, ioa, cot, limit)")
    changes = dict(_pairs(change_part))
    if changes and action != "rewrite":
        raise RuleError(f"only rewrite rules take changes after ':' ({spec!r})")
    return Rule(action, changes=changes, **kwargs)


def _pairs(text: str) -> Iterable[tuple[str, str]]:
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise RuleError(f"{item!r} is not KEY=VALUE")
        yield key.strip().lower(), value.strip()


def _type_id(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return TypeId[text.upper()]
    except KeyError:
        raise RuleError(f"unknown type {text!r} (a mnemonic like C_SC_NA_1 or a number)") \
            from None


class SeqMap:
    """Sequence numbers of one direction: as sent by the source, as seen by the destination.

    See the module docstring. Until the first drop or insert, everything is the identity.
    """

    __slots__ = ("delta", "dest_ack", "pending", "pristine", "src_ack_sent", "src_next")

    def __init__(self) -> None:
        self.delta = 0
        self.pristine = True
        # (destination N(S), source N(S) or None if inserted) of forwarded I-frames that the
        # destination has not acknowledged yet, oldest first
        self.pending: collections.deque[tuple[int, int | None]] = collections.deque()
        self.src_next = 0
        self.dest_ack: int | None = None  # last N(R) received from the destination
        self.src_ack_sent: int | None = None  # last N(R) sent to the source

    def forward(self, ssn: int) -> int:
        """Destination N(S) of a source I-frame that is forwarded."""
        dest = seq_add(ssn, self.delta)
        self._remember(dest, ssn)
        self.src_next = seq_add(ssn, 1)
        return dest

    def drop(self, ssn: int) -> None:
        """A source I-frame is not forwarded."""
        self.pristine = False
        self.delta -= 1
        self.src_next = seq_add(ssn, 1)

    def insert(self) -> int:
        """Destination N(S) for an I-frame the proxy adds."""
        self.pristine = False
        dest = seq_add(self.src_next, self.delta)
        self.delta += 1
        self._remember(dest, None)
        return dest

    def _remember(self, dest: int, src: int | None) -> None:
        pending = self.pending
        pending.append((dest, src))
        if len(pending) > 32767:  # a destination that never acknowledges: forget the oldest
            pending.popleft()

    def ack_to_source(self, rsn: int) -> int:
        """Translate an N(R) from the destination into the source's numbering."""
        self.dest_ack = rsn
        pending = self.pending
        if pending:
            k = seq_diff(rsn, pending[0][0])
            if k > len(pending) and k < 16384:  # acknowledges beyond what was forwarded
                k = len(pending)
            if k <= len(pending):
                for _ in range(k):
                    pending.popleft()
        if self.pristine:
            result = rsn
        else:
            result = self.src_next
            for _, src in pending:
                if src is not None:
                    result = src
                    break
        self.src_ack_sent = result
        return result

    def ack_after_drop(self) -> int | None:
        """N(R) to send the source after a drop, if nothing else would acknowledge it."""
        if any(src is not None for _, src in self.pending):
            return None  # the destination's next acknowledgement will cover it
        if self.src_ack_sent == self.src_next:
            return None
        self.src_ack_sent = self.src_next
        return self.src_next


class RewriteResult(NamedTuple):
    """What to do with bytes received in one direction.

    Attributes:
        forward: octets to send on to the destination.
        back: octets to send back to the source (acknowledgements of dropped frames).
        actions: ``(text, raw)`` per rule action, for the log.
    """

    forward: bytes
    back: bytes
    actions: list[tuple[str, bytes | None]]


class Rewriter:
    """Rules and renumbering for the two directions of one connection."""

    def __init__(self, rules: Sequence[Rule], profile: Profile = DEFAULT_PROFILE) -> None:
        self.rules = rules
        self.profile = profile
        self.framers: dict[str, Framer] = {"c2s": Framer(), "s2c": Framer()}
        self.seq: dict[str, SeqMap] = {"c2s": SeqMap(), "s2c": SeqMap()}

    def feed(self, direction: str, data: bytes) -> RewriteResult:
        """Process octets received in ``direction``."""
        other = "s2c" if direction == "c2s" else "c2s"
        framer = self.framers[direction]
        framer.feed(data)
        out = bytearray()
        back = bytearray()
        actions: list[tuple[str, bytes | None]] = []
        mine = self.seq[direction]
        theirs = self.seq[other]
        while True:
            event = framer.next_event()
            if event is NEED_DATA:
                break
            if type(event) is Malformed:
                out += event.raw
                continue
            apdu = event.apdu  # type: ignore[union-attr]
            raw: bytes = event.raw  # type: ignore[union-attr]
            if type(apdu) is SFrame:
                rsn = theirs.ack_to_source(apdu.rsn)
                out += raw if rsn == apdu.rsn else encode_apdu(SFrame(rsn))
                continue
            if type(apdu) is not IFrame:
                out += raw
                continue
            rsn = theirs.ack_to_source(apdu.rsn)
            replacement = self._apply(direction, apdu.asdu, actions, raw)
            if replacement is None:
                ssn = mine.forward(apdu.ssn)
                out += raw if (ssn, rsn) == (apdu.ssn, apdu.rsn) else encode_apdu(
                    IFrame(ssn, rsn, apdu.asdu))
                continue
            if not replacement:
                mine.drop(apdu.ssn)
                ack = mine.ack_after_drop()
                if ack is not None:
                    sframe = encode_apdu(SFrame(ack))
                    back += sframe
                    actions.append(((f"proxy: acknowledged dropped I-frames to the "
                                    f"{'master' if direction == 'c2s' else 'outstation'} "
                                    f"with S-frame N(R)={ack}"), sframe))
                continue
            for i, asdu_bytes in enumerate(replacement):
                ssn = mine.forward(apdu.ssn) if i == 0 else mine.insert()
                frame = encode_apdu(IFrame(ssn, rsn, asdu_bytes))
                out += frame
        return RewriteResult(bytes(out), bytes(back), actions)

    def _apply(self, direction: str, asdu_bytes: bytes,
               actions: list[tuple[str, bytes | None]], raw: bytes) -> list[bytes] | None:
        asdu: ASDU | None = None
        for rule in self.rules:
            if asdu is None:
                try:
                    decoded = decode_asdu(asdu_bytes, self.profile)
                except DecodeError:
                    return None  # undecodable ASDUs are never matched
                if type(decoded) is not ASDU:
                    return None
                asdu = decoded
            if not rule.matches(direction, asdu):
                continue
            try:
                result = rule.apply(direction, asdu)
                if result is None:
                    continue
                encoded = [r if isinstance(r, bytes) else encode_asdu(r, self.profile)
                           for r in result]
            except (EncodeError, RuleError, ValueError) as exc:
                actions.append(((f"proxy: rule '{rule.name}' failed on {type_name(asdu.type_id)}"
                                f" CA={asdu.common_address}: {exc}; forwarded unchanged"), raw))
                return None
            rule.applied += 1
            what = _summary(asdu)
            if not encoded:
                actions.append((f"proxy: rule '{rule.name}' dropped {direction} {what}", raw))
            elif len(encoded) == 1:
                actions.append(((f"proxy: rule '{rule.name}' rewrote {direction} {what} to "
                                f"ASDU {encoded[0].hex()}"), encoded[0]))
            else:
                actions.append(((f"proxy: rule '{rule.name}' sent {direction} {what} as "
                                f"{len(encoded)} I-frames"), raw))
            return encoded
        return None

    def leftover(self, direction: str) -> bytes:
        """Octets of an incomplete APDU held back in ``direction`` (stream ended)."""
        return self.framers[direction].reset()


def _summary(asdu: ASDU) -> str:
    ioas = ",".join(str(o.address) for o in asdu.objects[:4])
    more = "..." if len(asdu.objects) > 4 else ""
    return (f"{type_name(asdu.type_id)} COT={int(asdu.cause)} CA={asdu.common_address} "
            f"IOA={ioas}{more}")
