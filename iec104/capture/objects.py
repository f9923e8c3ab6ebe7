"""Packets held as Python objects, read like a capture file (scapy lists, (time, frame) pairs).

Theory of operation
-------------------
:func:`~iec104.dissector.dissect` reads capture files through
:class:`~iec104.capture.reader.CaptureReader`, which yields
:class:`~iec104.capture.reader.Packet` records. Analysts often hold packets in memory
instead: a scapy ``PacketList`` from ``rdpcap``/``sniff``, or ``(timestamp, frame)`` pairs from
another tool. :func:`packets_from_objects` turns such an iterable into the same ``Packet``
records, numbered from 1 in iteration order (the frame numbers a capture file of the same
packets would have), so everything downstream is shared. Items may be:

* ``(timestamp, frame)`` or ``(timestamp, frame, linktype)``: ``frame`` the captured octets
  (``bytes``/``bytearray``/``memoryview``), ``timestamp`` seconds since the epoch (``int``,
  ``float``, ``Decimal`` such as scapy's ``EDecimal``), a timezone-aware ``datetime``, or None;
  ``linktype`` a :class:`~iec104.capture.reader.LinkType` (default: the ``linktype``
  argument, Ethernet);
* scapy packets: recognised by their class's module; the link type is looked up in scapy's
  own registry (``conf.l2types``) of the scapy already loaded by whoever made the packets,
  so this module never imports scapy (GPL-2.0, an optional extra: :mod:`iec104.scapy`);
* :class:`~iec104.capture.reader.Packet` records (renumbered).

An item that is none of these is skipped with one :class:`~.errors.CaptureWarning` naming its
position and type (the packets around it are kept), as a damaged record in a file would be.
A timestamp outside what nanoseconds since the epoch can hold becomes None.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import CaptureWarning
from .reader import MAX_TIME_NS, MIN_TIME_NS, CaptureReader, LinkType, Packet

__all__ = ["is_packet_iterable", "packets_from_objects", "scapy_record", "time_ns_of"]

_FRAME_TYPES = (bytes, bytearray, memoryview)


def is_packet_iterable(source: object) -> bool:
    """True for an iterable of packets, False for a path, a file object or a reader."""
    if isinstance(source, (str, bytes, bytearray, os.PathLike, CaptureReader)):
        return False
    return not hasattr(source, "read") and isinstance(source, Iterable)


def time_ns_of(timestamp: Any) -> int | None:
    """Seconds since the epoch (int, float, Decimal) or an aware datetime -> integer ns
    in [MIN_TIME_NS, MAX_TIME_NS]; None for None, NaN or out of range.

    Raises:
        TypeError: not a timestamp.
    """
    if timestamp is None:
        return None
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise TypeError("a naive datetime (give it a time zone)")
        timestamp = Decimal(str(timestamp.timestamp()))
    elif isinstance(timestamp, float):
        timestamp = Decimal(repr(timestamp))  # the decimal the user sees: 1.1 is 1.1 s
    elif isinstance(timestamp, bool) or not isinstance(timestamp, (int, Decimal)):
        raise TypeError(f"a timestamp of type {type(timestamp).__name__}")
    try:
        ns = int(Decimal(timestamp) * 1_000_000_000)
    except (InvalidOperation, ValueError, OverflowError):
        return None  # NaN, infinity
    return ns if MIN_TIME_NS <= ns <= MAX_TIME_NS else None


def _record(item: Any, linktype: int) -> tuple[int | None, int, bytes]:
    """(time_ns, linktype, octets) of one item; TypeError when it is no packet."""
    if isinstance(item, Packet):
        return item.time_ns, item.linktype, item.data
    if isinstance(item, tuple) and len(item) in (2, 3):
        if not isinstance(item[1], _FRAME_TYPES):
            raise TypeError(f"a pair whose frame is of type {type(item[1]).__name__}, not bytes")
        kind = int(item[2]) if len(item) == 3 else linktype
        return time_ns_of(item[0]), kind, bytes(item[1])
    if type(item).__module__.startswith("scapy."):
        return scapy_record(item)
    raise TypeError(f"of type {type(item).__name__}")


def scapy_record(pkt: Any) -> tuple[int | None, int, bytes]:
    """``(time_ns, linktype, octets)`` of a scapy packet (scapy is already loaded: the
    packet exists).

    Raises:
        TypeError: its outermost layer has no link-layer type in scapy's registry.
    """
    config = sys.modules.get("scapy.config")
    linktype = config.conf.l2types.layer2num.get(type(pkt)) if config is not None else None
    if linktype is None:
        raise TypeError(f"a scapy {type(pkt).__name__} packet: no link-layer type for it")
    return time_ns_of(pkt.time), int(linktype), bytes(pkt)


def packets_from_objects(items: Iterable[Any],
                         linktype: int = LinkType.ETHERNET) -> Iterator[Packet]:
    """Capture records from in-memory packets (see the module docstring)."""
    for frame, item in enumerate(items, 1):
        try:
            time_ns, kind, data = _record(item, linktype)
        except TypeError as exc:
            warnings.warn(f"packet {frame}: not a packet ({exc}); skipped", CaptureWarning,
                          stacklevel=2)
            continue
        yield Packet(frame, time_ns, kind, data, len(data))
