"""Per-direction field-size profiles: detected from the traffic, or given per endpoint.

Theory of operation
-------------------
A capture can hold standard 104 devices (COT 2, CA 2, IOA 3) beside devices that keep
IEC 101 sizes. :class:`DetectingBuilder` sits in front of a record builder
(:class:`~.records.RecordBuilder`, or the parallel dissector's deferred builder) and decides
a :class:`~iec104.codec.Profile` for each direction of each connection:

* a direction matched by a :class:`ProfileOverrides` entry (``--profile HOST[:PORT]=C,A,I``)
  or covered by its ``default`` (``--profile C,A,I``) uses that profile (confidence None);
* any other direction collects the ASDUs of its first ``sample`` I-frames and hands them to
  :func:`iec104.codec.detect_profile` (the codec owns every protocol rule); at the end of
  its connection, or when too much is buffered, it decides with what it has. A direction
  with too little evidence of its own takes the other direction's detected profile (one
  device, one set of sizes) at half its confidence, else falls back to 2/2/3 (confidence 0).

A master sends few I-frames: when one direction decides, a waiting other direction decides
too (from its own ASDUs when it has the 3 detection needs, else it borrows), and a direction
whose other one is decided waits for 3 I-frames only. Every call (frame, malformed run, gap,
event) is queued while an earlier I-frame waits for a decision, and replayed in its order
once the decisions it needs are made, so rows are neither lost nor reordered (APDU numbers are assigned at replay, in capture order). The
queue is bounded by ``max_pending``: beyond it the waiting directions decide at once. Once a
direction is decided its calls go straight through (the common case costs a dict lookup).
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from ..codec import Detection, Frame, Malformed, Profile, detect_profile
from .builder import Endpoints

Key = tuple[int, str]  # (stream, direction)
_OTHER = {"c2s": "s2c", "s2c": "c2s"}
_ENOUGH = 3  # detect_profile's min_asdus: I-frames a direction needs to detect on its own


class ProfileOverrides(NamedTuple):
    """Profiles given by the user instead of detected.

    Attributes:
        default: profile of every direction no entry matches; None = detect those.
        endpoints: ``(host, port or None, profile)``: a connection with an endpoint at
            ``host`` (and ``port``, when given) uses ``profile`` in both directions.
    """

    default: Profile | None = None
    endpoints: tuple[tuple[str, int | None, Profile], ...] = ()

    def lookup(self, ep: Endpoints) -> Profile | None:
        """The given profile for a connection direction, or None (detect it)."""
        for host, port, profile in self.endpoints:
            for h, p in ((ep.src, ep.sport), (ep.dst, ep.dport)):
                if h == host and (port is None or p == port):
                    return profile
        return self.default


class Decision(NamedTuple):
    """What a direction is decoded with.

    Attributes:
        profile: the field sizes.
        confidence: [0, 1] for a detection (0: fallback to 2/2/3), None when given.
        detection: the codec's :class:`~iec104.codec.Detection`, None when given.
    """

    profile: Profile
    confidence: float | None
    detection: Detection | None


class _Direction:
    __slots__ = ("asdus", "decision", "endpoints", "queued")

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.asdus: list[bytes] = []
        self.decision: Decision | None = None
        self.queued = 0


class DetectingBuilder:
    """A record builder front that decodes each direction with its own profile.

    Args:
        target: the builder rows go to (``add_frame`` takes ``profile``, ``confidence``).
        overrides: profiles given per endpoint or for all (None: detect every direction).
        sample: I-frames of a direction after which its profile is decided.
        max_pending: calls queued at most before waiting directions decide.

    Attributes:
        decisions: the :class:`Decision` of every direction seen, by ``(stream, direction)``.
    """

    def __init__(self, target: Any, overrides: ProfileOverrides | None = None, *,
                 sample: int = 16, max_pending: int = 4096) -> None:
        self.target = target
        self.overrides = overrides or ProfileOverrides()
        self.sample = sample
        self.max_pending = max_pending
        self.decisions: dict[Key, Decision] = {}
        self._directions: dict[Key, _Direction] = {}
        self._queue: deque[tuple[Any, ...]] = deque()
        self._decided: dict[int, Decision] = {}  # id(Endpoints) -> decision, while open

    # what callers read from a builder
    @property
    def decodes_octets(self) -> bool:
        """Whether frames may come undecoded (``Framer(decode=False)``): as the target's;
        this front reads an I-frame's ASDU from its octets either way."""
        return bool(getattr(self.target, "decodes_octets", False))

    @property
    def rows(self) -> int:
        return self.target.rows  # type: ignore[no-any-return]

    @property
    def errors(self) -> int:
        return self.target.errors  # type: ignore[no-any-return]

    @property
    def gaps(self) -> int:
        return self.target.gaps  # type: ignore[no-any-return]

    def take_batch(self) -> Any:
        return self.target.take_batch()

    def take(self) -> Any:  # the parallel dissector's deferred builder
        return self.target.take()

    def straight(self, ep: Endpoints) -> Decision | None:
        """The decision an I-frame of ``ep`` goes to the target with right now (decided,
        nothing queued), else None (it would wait): bulk callers ask before they bypass
        :meth:`add_frame`. S- and U-frames, malformed runs, gaps and events go straight
        through whenever nothing is queued."""
        return None if self._queue else self._decided.get(id(ep))

    @property
    def queued(self) -> bool:
        """Whether calls wait for a decision (then every call is queued behind them)."""
        return bool(self._queue)

    # -- the builder calls ------------------------------------------------------------------

    def _direction(self, ep: Endpoints) -> _Direction:
        key = (ep.stream, ep.direction)
        d = self._directions.get(key)
        if d is None:
            d = self._directions[key] = _Direction(ep)
            given = self.overrides.lookup(ep)
            if given is not None:
                self._decide(key, d, Decision(given, None, None))
        return d

    def add_frame(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                  event: Frame) -> None:
        # fast path: a decided direction and nothing queued (a direction decoder passes the
        # same Endpoints object every time; _Direction keeps it alive, so its id is unique)
        decision = self._decided.get(id(ep))
        if decision is not None and not self._queue:
            self.target.add_frame(time_ns, frame, ep, event, decision.profile,
                                  decision.confidence)
            return
        if event.raw[2] & 1:  # S and U frames need no profile, only their turn
            self._other(4, time_ns, frame, ep, (event,))
            return
        d = self._direction(ep)
        decision = d.decision
        if decision is not None and not self._queue:
            self.target.add_frame(time_ns, frame, ep, event, decision.profile,
                                  decision.confidence)
            return
        if decision is None:
            d.asdus.append(event.raw[6:])  # the ASDU (also of an undecoded Frame)
        d.queued += 1
        self._queue.append((0, time_ns, frame, ep, event))
        other_key = (ep.stream, _OTHER[ep.direction])
        if decision is None and len(d.asdus) >= (
                _ENOUGH if other_key in self.decisions else self.sample):
            self._decide((ep.stream, ep.direction), d)
            other = self._directions.get(other_key)
            if other is not None and other.decision is None:
                self._decide(other_key, other)
        self._after_queueing()

    def add_malformed(self, time_ns: int | None, frame: int | None, ep: Endpoints,
                      event: Malformed) -> None:
        self._other(1, time_ns, frame, ep, (event,))

    def add_gap(self, time_ns: int | None, frame: int | None, ep: Endpoints, missing: int,
                detail: str = "") -> None:
        self._other(2, time_ns, frame, ep, (missing, detail))

    def add_event(self, time_ns: int | None, frame: int | None, ep: Endpoints, text: str,
                  raw: bytes | None = None) -> None:
        self._other(3, time_ns, frame, ep, (text, raw))

    def _other(self, kind: int, time_ns: int | None, frame: int | None, ep: Endpoints,
               args: tuple[Any, ...]) -> None:
        if not self._queue:
            self._call(kind, time_ns, frame, ep, args)
        else:
            self._queue.append((kind, time_ns, frame, ep, args))
            self._after_queueing()

    def end_stream(self, stream: int) -> None:
        """A connection ended: decide its directions (the one with more evidence first)."""
        keys = sorted((k for k in self._directions if k[0] == stream),
                      key=lambda k: -len(self._directions[k].asdus))
        for key in keys:
            d = self._directions[key]
            if d.decision is None:
                self._decide(key, d)
        self._flush()
        for key in keys:  # nothing of a decided direction is left queued after the flush
            d = self._directions[key]
            if not d.queued:
                del self._directions[key]
                self._decided.pop(id(d.endpoints), None)

    def close(self) -> None:
        """End of input: decide every direction still waiting and replay the queue."""
        for stream in sorted({k[0] for k in self._directions}):
            self.end_stream(stream)
        self._flush()

    # -- deciding and replaying -----------------------------------------------------------

    def _decide(self, key: Key, d: _Direction, decision: Decision | None = None) -> None:
        if decision is None:
            detection = detect_profile(d.asdus)
            decision = Decision(detection.profile, detection.confidence, detection)
            other = self.decisions.get((key[0], _OTHER[key[1]]))
            if detection.fallback and other is not None and other.confidence:
                # too little here: the other direction's device sizes, less sure
                decision = Decision(other.profile, round(other.confidence / 2, 3), detection)
        d.decision = decision
        d.asdus = []
        self.decisions[key] = decision
        self._decided[id(d.endpoints)] = decision

    def decide_waiting(self) -> None:
        """Decide every direction that holds calls back, with the evidence it has, and
        replay the queue (what ``max_pending`` does; a live recorder bounds the time rows
        wait with it)."""
        for key, d in list(self._directions.items()):
            if d.decision is None and d.queued:
                self._decide(key, d)
        self._flush()

    def _after_queueing(self) -> None:
        if len(self._queue) > self.max_pending:
            self.decide_waiting()
        else:
            self._flush()

    def _flush(self) -> None:
        queue = self._queue
        directions = self._directions
        while queue:
            kind, time_ns, frame, ep, args = queue[0]
            if kind == 0:
                d = directions[(ep.stream, ep.direction)]
                if d.decision is None:
                    return
                queue.popleft()
                d.queued -= 1
                self.target.add_frame(time_ns, frame, ep, args, d.decision.profile,
                                      d.decision.confidence)
            else:
                queue.popleft()
                self._call(kind, time_ns, frame, ep, args)

    def _call(self, kind: int, time_ns: int | None, frame: int | None, ep: Endpoints,
              args: tuple[Any, ...]) -> None:
        target = self.target
        if kind == 4:
            target.add_frame(time_ns, frame, ep, *args)
        elif kind == 1:
            target.add_malformed(time_ns, frame, ep, *args)
        elif kind == 2:
            target.add_gap(time_ns, frame, ep, *args)
        else:
            target.add_event(time_ns, frame, ep, *args)

