"""``iec104 capture``: live capture from an interface into Parquet (and raw pcapng).

Stops on SIGINT (exit 130), SIGTERM (exit 0) or after ``--duration``; everything captured
until then is decoded and written.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import CliError
from .common import add_log_options, check_output_dir, log_kwargs, parse_duration


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("capture", help="capture live traffic from an interface into Parquet",
                       description="Capture IEC 104 traffic from a network interface with "
                       "dumpcap (or, when dumpcap is missing, scapy's sniffer: pip install "
                       "'iec104[scapy]'), reassemble and decode it as the offline dissector "
                       "does, and log it into a rotating Parquet directory (optionally keeping "
                       "the raw packets as pcapng, with dumpcap). Needs root or CAP_NET_RAW.")
    p.add_argument("-i", "--interface", required=True, metavar="IFACE",
                   help="interface to capture on (e.g. eth0, lo, any)")
    p.add_argument("--port", type=int, action="append", metavar="N",
                   help="TCP port of IEC 104 (repeatable; default 2404)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="Parquet log directory: a dataset (date= partitions; may hold "
                   "converted captures too)")
    p.add_argument("--pcapng", action="store_true",
                   help="also keep the raw packets as pcapng files in DIR/_pcapng "
                   "(ignored by pandas.read_parquet)")
    p.add_argument("--pcapng-dir", metavar="DIR2", help="keep the raw pcapng files in DIR2")
    p.add_argument("-f", "--capture-filter", metavar="BPF",
                   help="capture filter (default: tcp port N for each --port)")
    p.add_argument("--heuristic", action="store_true",
                   help="also decode TCP streams on other ports that look like IEC 104")
    p.add_argument("--duration", type=parse_duration, metavar="T", help="stop after T")
    p.add_argument("--dumpcap", metavar="PATH", help="dumpcap program (default: "
                   "$IEC104_DUMPCAP or on PATH; without it, scapy's sniffer if installed)")
    add_log_options(p)
    return p


def _engine(args: argparse.Namespace, pcapng_dir: str | None) -> tuple[type, dict[str, Any]]:
    """dumpcap's LiveCapture, or scapy's sniffer when dumpcap is missing (and scapy is not)."""
    from ..recorder.live import LiveCapture, LiveCaptureError, find_dumpcap

    try:
        find_dumpcap(args.dumpcap)
    except LiveCaptureError as exc:
        if args.dumpcap:
            raise CliError(str(exc)) from None
        try:
            from ..scapy import ScapyLiveCapture
        except ImportError:
            raise CliError(f"{exc}; or pip install 'iec104[scapy]' to capture with scapy's "
                           "sniffer") from None
        if pcapng_dir:
            raise CliError(f"{exc}; --pcapng/--pcapng-dir need it (scapy's sniffer, the "
                           "fallback, does not keep raw packets)")
        print("iec104 capture: dumpcap not found; capturing with scapy's sniffer",
              file=sys.stderr, flush=True)
        return ScapyLiveCapture, {}
    return LiveCapture, {"pcapng_dir": pcapng_dir, "dumpcap": args.dumpcap}


def run(args: argparse.Namespace) -> int:
    from ..recorder.live import LiveCaptureError

    check_output_dir(args.output)
    pcapng_dir = args.pcapng_dir or (str(Path(args.output) / "_pcapng") if args.pcapng else None)
    engine, options = _engine(args, pcapng_dir)
    try:
        cap = engine(args.interface, args.output, ports=args.port or (2404,),
                     heuristic=args.heuristic, capture_filter=args.capture_filter,
                     **options, **log_kwargs(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            cap.start()
        except LiveCaptureError as exc:
            raise CliError(str(exc)) from None
        print(f"iec104 capture: capturing on {args.interface} ({cap.capture_filter}), log "
              f"{args.output}", file=sys.stderr, flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while cap.running and not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(0.5 if left is None else min(left, 0.5))
        try:
            files = cap.stop(linger=0.2)
        except LiveCaptureError as exc:
            print(f"iec104: {exc}", file=sys.stderr, flush=True)
            return 1
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    stats = cap.stats
    print(f"iec104 capture: stopped; packets={stats['packets']} streams={stats['streams']} "
          f"rows={stats.get('rows_written', 0)} files={len(files)}"
          + (f" pcapng={len(cap.pcapng_files)}" if pcapng_dir else "")
          + (f"; dumpcap: {cap.dumpcap_stats}" if cap.dumpcap_stats else ""),
          file=sys.stderr, flush=True)
    return 130 if received and received[0] == signal.SIGINT else 0
