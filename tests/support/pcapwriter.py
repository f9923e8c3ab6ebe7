"""Build a real TCP conversation around IEC 104 payloads and write it as pcap or pcapng.

Theory of operation
-------------------
Tests encode frames with our codec (or with a peer implementation) and want an independent
decoder (tshark) or our own dissector to read them back from a capture file. A capture that only
contains naked data segments is not enough: tshark's TCP reassembly and our dissector both expect
a conversation that starts with a handshake and whose sequence/acknowledgement numbers add up.
So :func:`build_conversation` produces, with scapy:

1. ``SYN`` (client -> server), ``SYN-ACK``, ``ACK`` (unless ``handshake=False``);
2. for every ``(direction, payload)`` message, one or more ``PSH-ACK`` data segments carrying the
   payload (split by ``segment_size`` or by an explicit list of chunk sizes), each followed by a
   pure ``ACK`` from the receiver when ``ack_each=True``;
3. ``FIN-ACK`` / ``FIN-ACK`` / ``ACK`` (unless ``fin=False``).

Sequence numbers start at fixed ISNs (``client_isn``/``server_isn``), so the same arguments always
produce byte-identical files; timestamps start at ``start_time`` and advance by ``step`` seconds
per packet. Link layer is Ethernet (DLT_EN10MB) so that both tshark and dpkt-style readers handle
it without special cases.

scapy is GPL-2.0-only: it is used here, at the test edge, and never by the ``iec104`` package.

Example::

    from tests.support.pcapwriter import write_pcap
    write_pcap(tmp_path / "x.pcap", [("c2s", startdt_act), ("s2c", startdt_con)])
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import EDecimal, wrpcap, wrpcapng

Direction = Literal["c2s", "s2c"]

# A message is (direction, payload) or (direction, payload, chunk_sizes). chunk_sizes, if given,
# must sum to len(payload) and overrides segment_size for that message.
Message = tuple[Direction, bytes] | tuple[Direction, bytes, Sequence[int]]

IEC104_PORT = 2404
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"
DEFAULT_START_TIME = 1_700_000_000.0  # 2023-11-14T22:13:20Z, fixed for reproducible files


def random_client_port(rng: random.Random | None = None) -> int:
    """A random port in the IANA dynamic range [49152, 65535]."""
    return (rng or random).randint(49152, 65535)


@dataclass
class _Side:
    ip: str
    port: int
    mac: str
    seq: int  # next sequence number this side will send


def _chunks(payload: bytes, sizes: Sequence[int] | None, segment_size: int | None) -> list[bytes]:
    if sizes is not None:
        if sum(sizes) != len(payload) or any(s <= 0 for s in sizes):
            raise ValueError(f"chunk sizes {list(sizes)} do not split {len(payload)} bytes")
        out, pos = [], 0
        for size in sizes:
            out.append(payload[pos : pos + size])
            pos += size
        return out
    if segment_size is None or len(payload) <= segment_size:
        return [payload]
    if segment_size <= 0:
        raise ValueError("segment_size must be positive")
    return [payload[i : i + segment_size] for i in range(0, len(payload), segment_size)]


def build_conversation(
    messages: Iterable[Message],
    *,
    client_ip: str = "127.0.0.1",
    client_port: int | None = None,
    server_ip: str = "127.0.0.1",
    server_port: int = IEC104_PORT,
    segment_size: int | None = None,
    handshake: bool = True,
    fin: bool = True,
    ack_each: bool = True,
    client_isn: int = 1000,
    server_isn: int = 5000,
    start_time: float = DEFAULT_START_TIME,
    step: float = 0.001,
    seed: int | None = None,
) -> list[Packet]:
    """Return the scapy packets of one TCP conversation carrying ``messages`` in order.

    Args:
        messages: ``(direction, payload)`` or ``(direction, payload, chunk_sizes)``; direction is
            ``'c2s'`` (client to server) or ``'s2c'``. Payloads are sent verbatim: several APDUs
            in one payload share one segment, which is how pipelined frames are produced.
        client_port: client TCP port; ``None`` picks a random port in [49152, 65535]
            (deterministic when ``seed`` is given).
        segment_size: split each payload into segments of at most this many bytes
            (``None``: one segment per message, whatever its size).
        handshake / fin: emit the SYN/SYN-ACK/ACK opening and the FIN closing.
        ack_each: after each data segment, emit a pure ACK from the receiving side.
        client_isn / server_isn: initial sequence numbers, in [0, 2**32).
        start_time / step: timestamp of the first packet (epoch seconds) and the increment.
    """
    rng = random.Random(seed)
    if client_port is None:
        client_port = random_client_port(rng)
    client = _Side(client_ip, client_port, CLIENT_MAC, client_isn % 2**32)
    server = _Side(server_ip, server_port, SERVER_MAC, server_isn % 2**32)
    packets: list[Packet] = []
    t0, dt = Decimal(str(start_time)), Decimal(str(step))

    def emit(src: _Side, dst: _Side, flags: str, payload: bytes = b"", ack: bool = True) -> None:
        tcp = TCP(
            sport=src.port,
            dport=dst.port,
            seq=src.seq,
            ack=dst.seq if ack else 0,
            flags=flags,
            window=65535,
        )
        pkt = Ether(src=src.mac, dst=dst.mac) / IP(src=src.ip, dst=dst.ip) / tcp
        if payload:
            pkt = pkt / Raw(load=payload)
        pkt.time = EDecimal(t0 + dt * len(packets))  # exact decimal, no float drift
        packets.append(pkt)
        consumed = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        src.seq = (src.seq + consumed) % 2**32

    if handshake:
        emit(client, server, "S", ack=False)
        emit(server, client, "SA")
        emit(client, server, "A")

    for message in messages:
        direction, payload = message[0], bytes(message[1])
        sizes = message[2] if len(message) > 2 else None  # type: ignore[misc]
        if direction == "c2s":
            src, dst = client, server
        elif direction == "s2c":
            src, dst = server, client
        else:
            raise ValueError(f"direction must be 'c2s' or 's2c', not {direction!r}")
        for chunk in _chunks(payload, sizes, segment_size):
            emit(src, dst, "PA", chunk)
            if ack_each:
                emit(dst, src, "A")

    if fin:
        emit(client, server, "FA")
        emit(server, client, "FA")
        emit(client, server, "A")
    return packets


def write_pcap(path: str | os.PathLike[str], messages: Iterable[Message], **kwargs: object) -> Path:
    """Build a conversation (see :func:`build_conversation`) and write it as classic pcap."""
    path = Path(path)
    wrpcap(str(path), build_conversation(messages, **kwargs))  # type: ignore[arg-type]
    return path


def write_pcapng(
    path: str | os.PathLike[str], messages: Iterable[Message], **kwargs: object
) -> Path:
    """Build a conversation (see :func:`build_conversation`) and write it as pcapng."""
    path = Path(path)
    wrpcapng(str(path), build_conversation(messages, **kwargs))  # type: ignore[arg-type]
    return path


def write_packets(path: str | os.PathLike[str], packets: Sequence[Packet]) -> Path:
    """Write already built packets (e.g. two conversations concatenated); pcapng if the suffix
    is ``.pcapng``, else pcap."""
    path = Path(path)
    if path.suffix == ".pcapng":
        wrpcapng(str(path), list(packets))
    else:
        wrpcap(str(path), list(packets))
    return path
