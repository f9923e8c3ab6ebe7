"""A set of small real captures the way investigations see them (for dataset tests).

:func:`write_capture_set` writes, with :mod:`tests.support.pcapwriter` (scapy):

* ``ring/ring_NNNNN.pcap``: one long conversation cut into ``ring_files`` files at packet
  boundaries, as ``dumpcap -b filesize:`` would; it runs across midnight UTC, so the dataset
  gets two date partitions from it, and the files after the first start mid-connection;
* ``stations/station_NN.pcapng``: ``stations`` separate conversations, one per file, on
  different days, clients and common addresses;
* ``site_a/capture.pcap`` and ``site_b/capture.pcap``: two different captures with the same
  file name.

Every APDU is encoded by our codec; the files are deterministic for a given argument list.
"""

from __future__ import annotations

import random
from pathlib import Path

from iec104.codec import (
    ASDU,
    Cause,
    FloatingValue,
    IFrame,
    InformationObject,
    Quality,
    SFrame,
    SingleValue,
    TypeId,
    UFrame,
    UFunction,
    encode_apdu,
    encode_asdu,
)
from tests.support.pcapwriter import build_conversation, write_packets

MIDNIGHT = 1709337600.0  # 2024-03-02 00:00:00 UTC
DAY = 86400.0


def _messages(rng: random.Random, count: int, ca: int) -> list[tuple[str, bytes]]:
    """STARTDT, then ``count`` spontaneous I-frames (floats and singles), an S-frame every
    eight, a command with its confirmation every 25."""
    out: list[tuple[str, bytes]] = [("c2s", encode_apdu(UFrame(UFunction.STARTDT_ACT))),
                                    ("s2c", encode_apdu(UFrame(UFunction.STARTDT_CON)))]
    ssn = csn = 0
    for n in range(count):
        if rng.random() < 0.6:
            obj = InformationObject(rng.randrange(1000, 1010), FloatingValue(rng.random() * 100),
                                    Quality())
            asdu = ASDU(TypeId.M_ME_NC_1, False, Cause.SPONTANEOUS, False, False, 0, ca, (obj,))
        else:
            obj = InformationObject(rng.randrange(100, 105), SingleValue(rng.random() < 0.5),
                                    Quality())
            asdu = ASDU(TypeId.M_SP_NA_1, False, Cause.SPONTANEOUS, False, False, 0, ca, (obj,))
        out.append(("s2c", encode_apdu(IFrame(ssn, csn, encode_asdu(asdu)))))
        ssn += 1
        if ssn % 8 == 0:
            out.append(("c2s", encode_apdu(SFrame(ssn))))
        if n % 25 == 24:
            cmd = InformationObject(5000, SingleValue.ON, None, select=False, qualifier=0)
            out.append(("c2s", encode_apdu(IFrame(csn, ssn, encode_asdu(
                ASDU(TypeId.C_SC_NA_1, False, Cause.ACTIVATION, False, False, 0, ca,
                     (cmd,)))))))
            csn += 1
            out.append(("s2c", encode_apdu(IFrame(ssn, csn, encode_asdu(
                ASDU(TypeId.C_SC_NA_1, False, Cause.ACTIVATION_CONFIRMATION, False, False, 0,
                     ca, (cmd,)))))))
            ssn += 1
    return out


def write_capture_set(root: Path, *, ring_files: int = 24, stations: int = 28,
                      apdus: int = 60) -> list[Path]:
    """Write the captures under ``root``; returns their paths (ring files in order)."""
    rng = random.Random(104)
    paths: list[Path] = []
    ring = build_conversation(_messages(rng, apdus * ring_files // 2, ca=7),
                              client_ip="10.0.0.1", client_port=50000, server_ip="10.0.0.2",
                              start_time=MIDNIGHT - 30.0, step=0.05, seed=1)
    (root / "ring").mkdir(parents=True, exist_ok=True)
    size = -(-len(ring) // ring_files)
    for n in range(ring_files):
        paths.append(write_packets(root / "ring" / f"ring_{n:05d}.pcap",
                                   ring[n * size:(n + 1) * size]))
    (root / "stations").mkdir(exist_ok=True)
    for n in range(stations):
        packets = build_conversation(_messages(rng, apdus, ca=100 + n),
                                     client_ip=f"10.1.{n}.1", server_ip=f"10.1.{n}.2",
                                     start_time=MIDNIGHT + DAY * (n % 3) + 3600.0 * n,
                                     step=0.01, seed=n)
        paths.append(write_packets(root / "stations" / f"station_{n:02d}.pcapng", packets))
    for n, site in enumerate(("site_a", "site_b")):
        (root / site).mkdir(exist_ok=True)
        packets = build_conversation(_messages(rng, apdus, ca=300 + n),
                                     client_ip="10.2.0.1", server_ip="10.2.0.2",
                                     start_time=MIDNIGHT + 7200.0 + n, step=0.01, seed=50 + n)
        paths.append(write_packets(root / site / "capture.pcap", packets))
    return paths
