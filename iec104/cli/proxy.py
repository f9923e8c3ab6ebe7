"""``iec104 proxy``: transparent MITM proxy logging IEC 104 traffic into Parquet.

Stops cleanly on SIGINT (exit 130) or SIGTERM (exit 0): every connection is closed and
every APDU received is written before exiting. Exit 1: the log is incomplete (the disk was
still full at the end, writing failed for good, or the logger process died or stalled along
the way; forwarding went on in every case). Exit 2: bad arguments, a log directory that
cannot be written, or an address it cannot listen on (nothing was forwarded).
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from typing import Any

from . import CliError
from .common import add_log_options, check_output_dir, log_kwargs, parse_duration, parse_size

EPILOG = """\
rule SPEC: KEY=VALUE,... with keys dir (c2s|s2c), type (mnemonic or number), ca, ioa,
cot, limit (apply at most N times); for --rewrite, then ':' and the changes FIELD=VALUE,...
(cot, negative, test, oa, ca, ioa, value, select, qualifier). Examples:
  --drop 'type=C_SC_NA_1,ca=1,ioa=100'          block single commands to CA 1 IOA 100
  --rewrite 'type=C_SC_NA_1,dir=s2c:negative=1'  make the outstation refuse them
  --rewrite 'type=M_ME_NC_1,ioa=200:value=0'     zero one measured value
Dropping or duplicating I-frames renumbers N(S)/N(R) of later frames both ways.
Without rules, bytes are forwarded untouched.

The log directory is a Parquet dataset: pandas.read_parquet(DIR) or iec104.analyzer.load(DIR).
A logger process decodes and writes it; if it dies, forwarding goes on and a new one starts.

exit status: 0 stopped by SIGTERM, 130 by SIGINT, 1 the log is incomplete (disk still full
at the end, the logger process died or stalled, or writing failed; forwarding went on),
2 bad arguments, a log directory that cannot be written, or an address it cannot listen on.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("proxy", help="transparent proxy between masters and an outstation, "
                       "logging both directions into Parquet",
                       description="Forward IEC 104 traffic between masters and one "
                       "outstation unchanged, and log both directions, decoded, into a "
                       "rotating Parquet directory.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, metavar="HOST:PORT",
                   help="address masters connect to (port 0: any free port)")
    p.add_argument("--upstream", required=True, metavar="HOST:PORT",
                   help="address of the outstation")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", metavar="DIR", help="Parquet log directory: a dataset "
                     "(date= partitions; may hold converted captures too)")
    out.add_argument("--no-log", action="store_true",
                     help="forward only, decode and log nothing")
    p.add_argument("--connect-timeout", type=parse_duration, default=5.0, metavar="T",
                   help="give up connecting to the outstation after T (default 5s)")
    p.add_argument("--max-backlog", type=parse_size, default=4 << 20, metavar="SIZE",
                   help="stop reading while more than SIZE of received traffic waits to be "
                   "decoded (default 4M); bounds memory and what a crash can lose")
    p.add_argument("--log-stall", type=parse_duration, default=2.0, metavar="T",
                   help="while reading is paused that way, a logger process that takes "
                   "nothing for T is stalled: forward unlogged (counted, a gap row) until it "
                   "catches up (default 2s)")
    r = p.add_argument_group("rules (off by default)")
    r.add_argument("--drop", action="append", default=[], metavar="SPEC",
                   help="drop matching I-frames")
    r.add_argument("--rewrite", action="append", default=[], metavar="SPEC",
                   help="rewrite fields of matching I-frames")
    r.add_argument("--duplicate", action="append", default=[], metavar="SPEC",
                   help="forward matching I-frames twice")
    add_log_options(p)
    p.add_argument("--stats-interval", type=parse_duration, default=None, metavar="T",
                   help="print counters to stderr every T")
    return p


def run(args: argparse.Namespace) -> int:
    from ..recorder import Proxy, RuleError, parse_address, parse_rule

    rules = []
    try:
        for action in ("drop", "rewrite", "duplicate"):
            rules += [parse_rule(action, spec) for spec in getattr(args, action)]
        listen = parse_address(args.listen)
        upstream = parse_address(args.upstream)
    except (RuleError, ValueError) as exc:
        raise CliError(str(exc)) from None
    output = None if args.no_log else check_output_dir(args.output)
    proxy = Proxy(listen, upstream, output, rules=rules,
                  connect_timeout=args.connect_timeout, max_backlog=args.max_backlog,
                  stall_seconds=args.log_stall, **log_kwargs(args))
    import asyncio  # here, not at the top: every `iec104` command builds this parser

    return asyncio.run(_serve(proxy, args.stats_interval))


async def _serve(proxy: Any, stats_interval: float | None) -> int:
    import asyncio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    from ..recorder import LogWriterError

    try:
        await proxy.start()
    except LogWriterError as exc:  # the log directory, found unwritable by the logger
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {proxy.listen[0]}:{proxy.listen[1]}: {exc}") from None
    # what start-up allocated (the codec's tables, asyncio) is never garbage: keep the
    # collector's full passes, pauses on the forwarding path, to what forwarding allocates
    gc.freeze()
    host, port = proxy.address
    print(f"iec104 proxy: listening on {host}:{port}, upstream {proxy.upstream[0]}:"
          f"{proxy.upstream[1]}, log {proxy.output or '(none)'}", file=sys.stderr, flush=True)
    failed: LogWriterError | None = None
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), stats_interval)
            except TimeoutError:
                print(f"iec104 proxy: {_format_stats(proxy.stats)}", file=sys.stderr,
                      flush=True)
    finally:
        try:
            files = await proxy.stop()
        except LogWriterError as exc:  # forwarding went on; the log is incomplete
            failed, files = exc, []
    print(f"iec104 proxy: stopped; {_format_stats(proxy.stats)}; {len(files)} files",
          file=sys.stderr, flush=True)
    if failed is not None:
        print(f"iec104: {failed}", file=sys.stderr, flush=True)
        return 1
    return 130 if received and received[0] == signal.SIGINT else 0


def _format_stats(stats: dict[str, Any]) -> str:
    keys = ("connections_total", "connections_open", "bytes_c2s", "bytes_s2c", "rows_written",
            "octets_not_logged")
    text = " ".join(f"{k}={stats[k]}" for k in keys if k in stats)
    applied = {k: v for k, v in stats.get("rules_applied", {}).items() if v}
    return text + (f" rules={applied}" if applied else "")
