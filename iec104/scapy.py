"""scapy integration: an IEC 104 layer on TCP 2404 backed by our codec, packets in, sniffing.

scapy is GPL-2.0-only. It is an optional extra (``pip install iec104[scapy]``) and this module
is the only one that imports it; nothing else in the package needs it.

Theory of operation
-------------------
* :class:`IEC104` is a scapy layer holding **one APDU**. It has a single field, ``apdu``,
  whose value is the APDU's octets; dissection cuts them with :class:`iec104.codec.Framer`
  (so scapy and our dissector agree on where an APDU ends, and junk before a start octet
  is one malformed layer), and building accepts codec objects (``IFrame``/``SFrame``/
  ``UFrame``, or :meth:`IEC104.from_asdu`), encoded by :func:`iec104.codec.encode_apdu`. The
  decoded view is :attr:`IEC104.frame` / :attr:`IEC104.asdu` (codec NamedTuples) and
  :attr:`IEC104.error`; ``show()`` and ``summary()`` print them. Several APDUs in one TCP
  segment are stacked ``IEC104`` layers; an APDU split over segments shows as a truncated
  layer in each (scapy does no TCP reassembly: use :func:`iec104.dissect`
  on the packets for that).
* The layer is bound to TCP port 2404 in both directions when this module is imported;
  :func:`bind_port` adds other ports. So ``sniff(prn=lambda p: p[IEC104].summary())``,
  ``rdpcap`` and ``send(IP(...)/TCP(...)/IEC104(apdu=...))`` work as for any scapy layer.
* :func:`iec104.dissect` reads a ``PacketList`` (or any iterable of scapy packets, see
  :mod:`iec104.capture.objects`, which knows scapy packets without importing scapy).
* :class:`ScapyLiveCapture` is :class:`iec104.recorder.live.LiveCapture` with scapy's
  ``AsyncSniffer`` in place of dumpcap (``iec104 capture`` uses it when dumpcap is
  missing): same reassembly, rows and Parquet log.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Self

from scapy.config import conf
from scapy.fields import Field
from scapy.layers.inet import TCP
from scapy.packet import Packet, Raw, bind_layers

from .codec import (
    ASDU,
    DEFAULT_PROFILE,
    DecodeError,
    Frame,
    Framer,
    IFrame,
    Malformed,
    Profile,
    RawASDU,
    SFrame,
    UFrame,
    decode_apdu,
    decode_asdu,
    encode_apdu,
    encode_asdu,
)
from .capture.objects import scapy_record
from .capture.reader import Packet as CapturePacket
from .capture.reassembly import IEC104_PORT
from .recorder.live import LiveCapture, LiveCaptureError

__all__ = ["IEC104", "ScapyLiveCapture", "bind_port", "packet_record"]

APDU = IFrame | SFrame | UFrame


def _cut(data: bytes) -> int:
    """Length of the first APDU (or malformed run) at the start of ``data``, as the codec's
    framer cuts it; all of ``data`` when it ends inside an APDU."""
    framer = Framer()
    framer.feed(data)
    event = framer.next_event()
    if isinstance(event, (Frame, Malformed)) and event.offset == 0:
        return len(event.raw)
    if isinstance(event, Malformed | Frame):  # junk before the first APDU: it is one layer
        return event.offset
    return len(data)


class ApduField(Field[bytes, bytes]):
    """One APDU's octets; set it from bytes or from a codec ``IFrame``/``SFrame``/``UFrame``."""

    def __init__(self, name: str) -> None:
        super().__init__(name, b"")

    def any2i(self, pkt: Packet | None, x: Any) -> bytes:
        if isinstance(x, (IFrame, SFrame, UFrame)):
            return encode_apdu(x)
        return bytes(x or b"")

    def i2m(self, pkt: Packet | None, x: bytes | None) -> bytes:
        return x or b""

    def m2i(self, pkt: Packet | None, x: bytes) -> bytes:
        return x

    def addfield(self, pkt: Packet, s: bytes, val: bytes | None) -> bytes:
        return s + (val or b"")

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, bytes]:
        n = _cut(s)
        return s[n:], s[:n]

    def i2len(self, pkt: Packet, x: Any) -> int:
        return len(x or b"")

    def i2repr(self, pkt: Packet | None, x: bytes) -> str:
        octets = x.hex(" ") if x else "''"
        return f"{octets}  ({pkt.mysummary()})" if isinstance(pkt, IEC104) else octets


class IEC104(Packet):  # type: ignore[misc]
    """One IEC 60870-5-104 APDU, decoded and encoded by :mod:`iec104.codec`.

    Build with ``IEC104(apdu=codec.UFrame(codec.UFunction.STARTDT_ACT))``,
    ``IEC104(apdu=b"\\x68\\x04\\x01\\x00\\x02\\x00")`` or :meth:`from_asdu`. Set
    :attr:`profile` (class or instance) for devices with other COT/CA/IOA sizes.
    """

    name = "IEC 60870-5-104"
    fields_desc = [ApduField("apdu")]
    profile: Profile = DEFAULT_PROFILE

    @classmethod
    def from_asdu(cls, asdu: ASDU, ssn: int = 0, rsn: int = 0,
                  profile: Profile | None = None) -> IEC104:
        """An I-frame carrying ``asdu`` (N(S) ``ssn`` and N(R) ``rsn`` in [0, 32767])."""
        profile = profile or cls.profile
        return cls(apdu=IFrame(ssn, rsn, encode_asdu(asdu, profile)))

    @property
    def frame(self) -> APDU | None:
        """The decoded APCI (``IFrame``: its ``asdu`` is still octets); None if malformed."""
        try:
            return decode_apdu(bytes(self.apdu))
        except DecodeError:
            return None

    @property
    def asdu(self) -> ASDU | RawASDU | None:
        """The decoded ASDU of an I-frame (None for S/U frames and malformed ones)."""
        frame = self.frame
        if not isinstance(frame, IFrame):
            return None
        try:
            return decode_asdu(frame.asdu, self.profile)
        except DecodeError:
            return None

    @property
    def error(self) -> str | None:
        """Why the APDU or its ASDU cannot be decoded (None: it can)."""
        try:
            frame = decode_apdu(bytes(self.apdu))
            if isinstance(frame, IFrame):
                decode_asdu(frame.asdu, self.profile)
        except DecodeError as exc:
            return str(exc)
        return None

    def mysummary(self) -> str:
        frame = self.frame
        if frame is None:
            return f"IEC104 malformed ({self.error})"
        if isinstance(frame, UFrame):
            return f"IEC104 U {frame.function.name}"
        if isinstance(frame, SFrame):
            return f"IEC104 S rsn={frame.rsn}"
        head = f"IEC104 I ssn={frame.ssn} rsn={frame.rsn}"
        asdu = self.asdu
        if not isinstance(asdu, ASDU):
            return f"{head} ASDU not decoded ({self.error})"
        type_name = getattr(asdu.type_id, "name", asdu.type_id)
        cause = getattr(asdu.cause, "name", asdu.cause)
        ioas = ",".join(str(o.address) for o in asdu.objects[:4])
        more = "..." if len(asdu.objects) > 4 else ""
        return f"{head} {type_name} {cause} CA={asdu.common_address} IOA={ioas}{more}"

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        return IEC104 if payload else Raw  # the next APDU of the same segment

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return s, None


def bind_port(port: int) -> None:
    """Dissect TCP ``port`` (either direction) as IEC 104, like 2404."""
    bind_layers(TCP, IEC104, sport=port)
    bind_layers(TCP, IEC104, dport=port)


bind_port(IEC104_PORT)


def packet_record(pkt: Packet) -> tuple[int | None, int, bytes]:
    """``(time_ns, linktype, octets)`` of a scapy packet, for the dissector
    (:func:`iec104.capture.objects.scapy_record`).

    Raises:
        TypeError: its outermost layer is no link layer scapy can write to a capture.
    """
    return scapy_record(pkt)


class ScapyLiveCapture(LiveCapture):
    """:class:`~iec104.recorder.live.LiveCapture` fed by scapy's ``AsyncSniffer`` instead of
    dumpcap (``iec104 capture`` falls back to it when dumpcap is missing): same capture
    filter, reassembly, rows and Parquet log. ``dumpcap``, ``buffer_mb`` and ``pcapng_dir``
    need dumpcap and are refused (ValueError)."""

    def __init__(self, interface: str, output: str | os.PathLike[str],
                 **kwargs: Any) -> None:
        for name in ("pcapng_dir", "dumpcap", "buffer_mb"):
            if kwargs.pop(name, None) is not None:
                raise ValueError(f"{name} needs dumpcap; scapy's sniffer does not provide it")
        super().__init__(interface, output, **kwargs)
        self._sniffer: Any = None
        self._packets: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def start(self, timeout: float = 10.0) -> Self:
        """Start scapy's sniffer and the decoding thread; returns once sniffing."""
        from scapy.sendrecv import AsyncSniffer

        if self._thread is not None:
            raise RuntimeError("the capture is already running")
        self._open_writer()
        started = threading.Event()
        self._sniffer = AsyncSniffer(iface=self.interface, filter=self.capture_filter,
                                     store=False, prn=self._packets.put,
                                     started_callback=started.set)
        self._sniffer.start()
        self._thread = threading.Thread(target=self._consume, name="iec104-capture",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not started.wait(0.05):
            if not self._sniffer.running or time.monotonic() > deadline:
                # AsyncSniffer keeps what stopped it (no permission, no such interface)
                why = getattr(self._sniffer, "exception", None) or "no reason given"
                self.stop(linger=0)
                raise LiveCaptureError(f"scapy's sniffer failed on {self.interface}: {why}")
        self._ready.set()
        return self

    def _consume(self) -> None:
        writer = self.writer
        assert writer is not None
        tick = min(0.25, writer.flush_seconds / 2)
        frame = 0
        try:
            stopping = False
            while not stopping:
                items = []
                try:
                    items.append(self._packets.get(timeout=tick))
                    while True:  # whatever else arrived meanwhile, in one go
                        items.append(self._packets.get_nowait())
                except queue.Empty:
                    pass
                packets = []
                for item in items:
                    if item is _STOP:
                        stopping = True
                        break
                    try:
                        time_ns, linktype, data = packet_record(item)
                    except TypeError:
                        continue  # a link layer the dissector cannot read either
                    frame += 1
                    packets.append(CapturePacket(frame, time_ns, linktype, data, len(data)))
                self._decode(packets)
                self._tick()
            self._finish()
        except Exception as exc:  # noqa: BLE001 -- reported by stop()
            self._error = exc
        finally:
            self._flush_request.set()

    def stop(self, linger: float = 0.5) -> list[Path]:
        """Stop sniffing (after ``linger`` seconds), decode the rest, close the files."""
        if self._thread is None:
            return self.files
        if linger > 0:
            time.sleep(linger)
        if self._sniffer is not None and self._sniffer.running:
            self._sniffer.stop(join=True)
        self._packets.put(_STOP)
        self._thread.join()
        self._thread = None
        self._cleanup()
        if self._error is not None:
            raise LiveCaptureError(f"capture failed: {self._error}") from self._error
        return self.files

    @property
    def running(self) -> bool:
        return (self._sniffer is not None and self._sniffer.running and
                self._thread is not None and self._thread.is_alive())


_STOP = object()
