"""Which field-size profile (COT, CA, IOA octets) a device uses, from its own ASDUs.

Theory of operation
-------------------
IEC 60870-5-101 lets a device send the cause of transmission in 1 or 2 octets, the common
address in 1 or 2 and the information object address in 1, 2 or 3; IEC 104 fixes 2/2/3 but
gateways and old devices keep their 101 sizes. Nothing on the wire says which: the sizes
have to be inferred. :func:`detect_profile` tries all 12 profiles on a sample of ASDUs of one
device (one direction of one connection) and scores each:

1. **Structural fit** (decisive): the fraction of ASDUs of a standard type that decode
   completely under the profile: the object count and the element size of the type must add
   up to the ASDU's length exactly, SQ=1 addresses must stay in range, time tags and secure
   messages must be whole. The length of an ASDU of ``n`` objects is ``2 + COT + CA + n *
   (IOA + element)`` (SQ=0) or ``2 + COT + CA + IOA + n * element`` (SQ=1), so one ASDU
   already rules out most profiles; several object counts separate the IOA size from the
   identifier's. ASDUs of unknown (private) types say nothing and are not counted.
2. **Plausibility** (breaks ties between profiles whose sizes add up the same way, e.g.
   2/2/2, 1/2/3 and 2/1/3): a wrong split moves octets between the originator, the common
   address and the IOA. Reading a zero high octet as a low one makes a *shifted* value
   (non-zero, low octet 0: IOA 100 read as 25600) and reading an originator as part of the
   common address makes one vary: the profile whose common addresses are non-zero, few and
   unshifted and whose IOAs are unshifted scores best.
3. **Prior**: the 104 profile 2/2/3 wins every tie and is chosen unless another profile
   decodes at least ``MIN_MARGIN`` more ASDUs (a few garbled ASDUs in a standard stream do
   not switch it), then the other 101 sizes in the order devices use them.

Too little evidence (fewer than ``min_asdus`` ASDUs of a standard type, or none decoding
under any profile) falls back to 2/2/3 with confidence 0. The confidence in [0, 1] grows
with the number of ASDUs and with the margin to the runner-up (structural margins count
fully, plausibility margins half): 0.9 and above is a structural certainty on several
ASDUs; below 0.5 means the choice rests on plausibility or a short sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .asdu import ASDU, DEFAULT_PROFILE, Profile, RawASDU, decode_asdu
from .constants import TypeId
from .errors import DecodeError

PROFILES: tuple[Profile, ...] = (
    DEFAULT_PROFILE, Profile(2, 2, 2), Profile(1, 1, 2), Profile(1, 2, 3), Profile(2, 1, 3),
    Profile(1, 1, 3), Profile(1, 2, 2), Profile(2, 1, 2), Profile(1, 1, 1), Profile(2, 2, 1),
    Profile(1, 2, 1), Profile(2, 1, 1))
"""The 12 profiles, in prior order (the 104 default first; ties go to the earlier one)."""

MIN_MARGIN = 2
"""ASDUs another profile must decode beyond 2/2/3 to be chosen instead of it."""


class Candidate(NamedTuple):
    """One profile's score.

    Attributes:
        profile: the field sizes.
        fit: fraction [0, 1] of the sample's standard-type ASDUs that decode completely.
        plausibility: [0, 1], 1 = every common address and IOA looks like a real one.
    """

    profile: Profile
    fit: float
    plausibility: float


class Detection(NamedTuple):
    """The outcome of :func:`detect_profile`.

    Attributes:
        profile: the chosen profile (2/2/3 when there was too little evidence).
        confidence: [0, 1]; 0 means a fallback without evidence.
        candidates: every profile's :class:`Candidate`, best first.
        asdus: ASDUs of a standard type in the sample (the evidence).
    """

    profile: Profile
    confidence: float
    candidates: tuple[Candidate, ...]
    asdus: int

    @property
    def fallback(self) -> bool:
        """True when the profile is the default for lack of evidence."""
        return self.confidence == 0.0


def _shifted(value: int) -> bool:
    """A non-zero value whose low octet is 0: a high octet read as a low one."""
    return value != 0 and value & 0xFF == 0


def _plausibility(asdus: list[ASDU]) -> float:
    """[0, 1]: how much the common addresses and IOAs decoded look like real ones."""
    if not asdus:
        return 0.0
    cas = [a.common_address for a in asdus]
    ioas = [o.address for a in asdus for o in a.objects if o.address is not None]
    bad_ca = sum(1 for c in cas if c == 0 or _shifted(c)) / len(cas)
    # one device: few common addresses (a gateway may have some; a wrong split many)
    spread = (len(set(cas)) - 1) / len(cas)
    bad_ioa = sum(1 for i in ioas if _shifted(i)) / len(ioas) if ioas else 0.0
    return max(0.0, 1.0 - (bad_ca + spread + bad_ioa) / 3)


def _score(profile: Profile, sample: list[bytes]) -> tuple[int, float]:
    decoded: list[ASDU] = []
    for raw in sample:
        try:
            asdu = decode_asdu(raw, profile)
        except DecodeError:
            continue
        if type(asdu) is not RawASDU:
            decoded.append(asdu)  # type: ignore[arg-type]
    return len(decoded), _plausibility(decoded)


def detect_profile(asdus: Iterable[bytes], *, min_asdus: int = 3,
                   limit: int = 64) -> Detection:
    """Detect the field-size profile of one device from the ASDUs it sent.

    Args:
        asdus: the device's ASDUs (I-frame payloads), in any order; only the first
            ``limit`` of a standard type ID are used.
        min_asdus: fewer ASDUs of a standard type than this fall back to 2/2/3.
        limit: sample size.

    Returns:
        A :class:`Detection`; never raises on bad octets (they only lower a profile's fit).
    """
    sample: list[bytes] = []
    for raw in asdus:
        # only a type ID the codec knows says something about the sizes
        if len(raw) >= 4 and raw[0] in _KNOWN:
            sample.append(bytes(raw))
            if len(sample) >= limit:
                break
    n = len(sample)
    scores = [(profile, *_score(profile, sample)) for profile in PROFILES]
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i][1], -scores[i][2], i))
    candidates = tuple(Candidate(scores[i][0], scores[i][1] / n if n else 0.0, scores[i][2])
                       for i in ranked)
    best = ranked[0]
    if n < min_asdus or scores[best][1] == 0:
        return Detection(DEFAULT_PROFILE, 0.0, candidates, n)
    default_fit = scores[0][1]
    if best != 0 and default_fit > 0 and scores[best][1] - default_fit < MIN_MARGIN:
        best = 0  # not enough to leave the standard profile
    _, fit, plausibility = scores[best]
    runner = max((s for i, s in enumerate(scores) if i != best), key=lambda s: (s[1], s[2]))
    if fit > runner[1]:  # structural: the runner-up fails on some ASDUs
        factor = min(1.0, 0.5 + (fit - runner[1]) / n)
    elif plausibility > runner[2]:  # same fit, more plausible addresses
        factor = 0.25 + min(0.25, plausibility - runner[2])
    else:  # a tie: the prior decided
        factor = 0.2
    confidence = (1.0 - 0.5 ** n) * (fit / n) * factor
    return Detection(scores[best][0], round(max(confidence, 0.001), 3), candidates, n)


_KNOWN = frozenset(t.value for t in TypeId)
