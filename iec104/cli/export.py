"""``iec104 export --zeek DIR [--json] SOURCE``: logs for other tools (Zeek/Malcolm).

SOURCE is what ``read``/``summary`` take: a capture (decoded with the input options), a
Parquet file of the schema, or a directory of them (a proxy or capture log). ``--zeek DIR``
writes spicy-iec104's logs (:mod:`iec104.zeek`): ``iec104-apci_i/_s/_u.log``,
``iec104-asdu-ident.log``, one ``iec104-<TYPE>.log`` per ASDU type, ``iec104-unk.log``; Zeek's
TSV format, or JSON lines with ``--json``.

Exit codes (:func:`~iec104.cli.read.exit_status`): 0 done; 1 an input was damaged part-way
through (everything before the damage is in the logs, a warning went to stderr); 2 bad
usage, a bad input, or DIR cannot be written (no log is left half-written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import CliError
from .common import (
    add_input_options,
    compile_filter_option,
    exit_status,
    open_source,
    report_problems,
    source_batches,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="write the traffic as Zeek logs (spicy-iec104's names, for Malcolm)",
        description="Export decoded IEC 104 traffic for other tools. --zeek DIR writes the "
        "logs of the spicy-iec104 Zeek analyzer that Malcolm reads (iec104-apci_i/_s/_u, "
        "iec104-asdu-ident, one iec104-<TYPE> log per ASDU type, iec104-unk), with Zeek's "
        "connection keys (uid, id.orig_h, ...); see 'Zeek logs' in README.md.",
        epilog=exit_status("in the logs"))
    p.add_argument("source", metavar="CAPTURE|PARQUET|DIR",
                   help="a pcap/pcapng capture, a Parquet file of iec104's schema, or a "
                   "directory of them (a proxy log)")
    p.add_argument("--zeek", required=True, metavar="DIR",
                   help="directory for the Zeek logs (created if needed; logs of the same "
                   "names are replaced)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines (Zeek's JSON writer, ISO 8601 ts) instead of TSV")
    add_input_options(p, filter_help="export only APDUs with a row matching EXPR")
    return p


def run(args: argparse.Namespace) -> int:
    from ..codec import DEFAULT_PROFILE
    from ..records.zeek import ZeekWriter

    out = Path(args.zeek)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: is not a directory")
    if not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such directory")
    flt = compile_filter_option(args.filter)
    inputs = open_source(args.source, args, directories=True)
    try:
        try:
            writer = ZeekWriter(out, json=args.json, profile=args.profile or DEFAULT_PROFILE)
        except OSError as exc:
            raise CliError(f"{out}: cannot be written: {exc.strerror or exc}") from None
        try:
            with writer:
                for batch in source_batches(inputs, args, pushdown=flt):
                    writer.write_batch(batch if flt is None else flt.apply(batch))
        except OSError as exc:
            raise CliError(f"{out}: writing the logs failed ({exc.strerror or exc}); no "
                           "log was left half-written") from None
    finally:
        inputs.close()
    files = writer.files
    print(f"iec104 export: {len(files)} Zeek logs in {out}"
          + (f"; {writer.skipped} rows that are no APDU (gaps, malformed octets, events) "
             "are not in them" if writer.skipped else ""), file=sys.stderr)
    return report_problems(inputs)
