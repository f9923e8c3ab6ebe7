"""The data unit identifier's shape: field sizes (:class:`Profile`) and where each field of
it lies in an ASDU (:class:`HeaderLayout`), for any profile.

Layout (sizes from :class:`Profile`, 104 defaults in brackets)::

    type ID (1) | SQ + count (1) | T P/N cause(6) [+ originator] (COT 1|[2]) |
    common address (1|[2]) | objects (the first one's address: IOA 1|2|[3])

The one home of these offsets and bits: :func:`~.asdu.decode_header`,
:func:`~.asdu.decode_asdu`, the secure authentication messages' wrapped ASDU
(:mod:`.security`) and the columnar dissector (``records/columnar.py``) read them here.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CAUSE_MASK", "COUNT_MASK", "DEFAULT_PROFILE", "HEADER_LAYOUTS", "NEGATIVE_BIT",
           "SQ_BIT", "TEST_BIT", "HeaderLayout", "Profile", "header_layout"]


class Profile(NamedTuple):
    """Field sizes of the data unit identifier and the object address.

    Attributes:
        cot_size: 1 (no originator address) or 2.
        ca_size: common address octets, 1 or 2.
        ioa_size: information object address octets, 1, 2 or 3.
    """

    cot_size: int = 2
    ca_size: int = 2
    ioa_size: int = 3

    def check(self) -> Profile:
        """Return self, or raise ``ValueError`` for sizes the standard does not define."""
        if self.cot_size not in (1, 2) or self.ca_size not in (1, 2) or \
                self.ioa_size not in (1, 2, 3):
            raise ValueError(f"unsupported profile {self}")
        return self


DEFAULT_PROFILE = Profile()
"""IEC 60870-5-104: COT 2 octets, common address 2, IOA 3."""

SQ_BIT = 0x80
"""Of the variable structure qualifier octet: the objects are a sequence (SQ=1)."""
COUNT_MASK = 0x7F
"""Of the variable structure qualifier octet: the number of objects [0, 127]."""
CAUSE_MASK = 0x3F
"""Of the cause octet: the cause of transmission [0, 63]."""
NEGATIVE_BIT = 0x40
"""Of the cause octet: P/N, a negative confirmation."""
TEST_BIT = 0x80
"""Of the cause octet: T, a test."""


class HeaderLayout(NamedTuple):
    """Where the data unit identifier's fields lie in an ASDU of one :class:`Profile`
    (offsets from the ASDU's first octet; in an APDU add :data:`~.apci.ASDU_AT`); see
    :func:`header_layout`.

    Attributes:
        type_id_at: the type identification octet (0).
        vsq_at: the variable structure qualifier octet (1): :data:`SQ_BIT`,
            :data:`COUNT_MASK`.
        cot_at: the cause octet (2): :data:`CAUSE_MASK`, :data:`NEGATIVE_BIT`,
            :data:`TEST_BIT`.
        oa_at: the originator address octet (3), or None when the COT is one octet.
        ca_at: the common address, ``ca_size`` octets little-endian (3 or 4).
        ca_size: 1 or 2.
        objects_at: the first information object (its address when it has one): the
            identifier's size, [4, 6].
        ioa_size: octets of an information object address, [1, 3].
    """

    type_id_at: int
    vsq_at: int
    cot_at: int
    oa_at: int | None
    ca_at: int
    ca_size: int
    objects_at: int
    ioa_size: int


def _header_layout(profile: Profile) -> HeaderLayout:
    cot_size, ca_size, ioa_size = profile
    return HeaderLayout(0, 1, 2, 3 if cot_size == 2 else None, 2 + cot_size, ca_size,
                        2 + cot_size + ca_size, ioa_size)


HEADER_LAYOUTS = {Profile(c, a, i): _header_layout(Profile(c, a, i))
                  for c in (1, 2) for a in (1, 2) for i in (1, 2, 3)}
"""The layouts of the 12 standard profiles, made once (for hot paths: a dict lookup)."""


def header_layout(profile: Profile = DEFAULT_PROFILE) -> HeaderLayout:
    """The :class:`HeaderLayout` of ASDUs of ``profile``."""
    layout = HEADER_LAYOUTS.get(profile)
    return layout if layout is not None else _header_layout(profile)
