"""``iec104 verify CAPTURE...``: decode with us and with tshark, list every disagreement.

For a user who distrusts a new dissector: :func:`iec104.verify.verify` pairs the APDUs of
both tools frame by frame and compares every header field and every object. Each
disagreement is printed on stdout as one tab-separated line (capture, frame, APDU, field,
ours, tshark's), followed by one summary line per capture (what was compared, and the
documented differences that were tolerated: ``iec104.verify.KNOWN_DIFFERENCES``).

Exit codes: 0 the tools agree on every APDU; 1 at least one disagreement; 2 bad usage, an
input that is missing or not a capture, tshark missing or failing on the file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import CliError
from .common import open_captures

EXIT_STATUS = ("Exit status: 0 the two dissections agree on every APDU; 1 at least one "
               "disagreement (listed on stdout); 2 bad usage, an input that is missing or not "
               "a capture, or tshark missing or failing on the file.")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "verify", help="cross-check our decoding of captures against tshark's",
        description="Decode each capture with iec104 and with tshark (-T pdml) and print "
        "every disagreement: capture, frame, APDU index in the frame, field, our value, "
        "tshark's value (tab-separated), then a summary line per capture. Documented "
        "limitations of tshark's IEC 104 dissector are counted, not reported. tshark's "
        "dissector has a fixed profile (COT 2, CA 2, IOA 3 octets).",
        epilog=EXIT_STATUS)
    p.add_argument("captures", nargs="+", metavar="CAPTURE", help="pcap or pcapng file")
    p.add_argument("-d", "--port", type=int, metavar="N",
                   help="TCP port of the IEC 104 server when it is not 2404 (both tools "
                   "decode it)")
    p.add_argument("-o", dest="tshark_options", action="append", default=[],
                   metavar="PREF:VALUE",
                   help="a tshark preference, passed on as tshark -o PREF:VALUE (repeatable), "
                   "e.g. tcp.analyze_sequence_numbers:FALSE when tshark takes segments for "
                   "retransmissions")
    return p


def run(args: argparse.Namespace) -> int:
    from ..verify import verify
    from ..verify.tshark import TSHARK_NO_SEQ_ANALYSIS, TsharkError, find_tshark

    if args.port is not None and not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: not a TCP port (1-65535)")
    if find_tshark() is None:
        raise CliError("tshark is not installed (apt-get install tshark, or set $TSHARK); "
                       "verify needs it")
    open_captures(args.captures).close()  # every input checked before any work
    options = [x for pref in args.tshark_options for x in ("-o", pref)]
    seq_pref = TSHARK_NO_SEQ_ANALYSIS[1]
    disagreements = 0
    for name in args.captures:
        try:
            result = verify(name, port=args.port, tshark_options=options, name=name)
        except TsharkError as exc:
            raise CliError(f"{name}: {exc}") from None
        for d in result.disagreements:
            apdu = "" if d.apdu is None else d.apdu
            print(f"{name}\t{d.frame}\t{apdu}\t{d.field}\t{d.ours!r}\t{d.theirs!r}")
        disagreements += len(result.disagreements)
        known = ", ".join(f"{k} {n}" for k, n in sorted(result.known.items()) if n) or "none"
        print(f"# {name}: {len(result.disagreements)} disagreements; APDUs: tshark "
              f"{result.tshark_apdus}, ours {result.our_apdus}, compared "
              f"{result.apdus_compared}, flagged by both {result.flagged_by_both}; objects "
              f"compared {result.objects_compared} (+{result.first_ioa_only} first IOA only); "
              f"documented differences: {known}")
        sys.stdout.flush()
        if result.tshark_apdus < result.our_apdus and seq_pref not in args.tshark_options:
            # tshark's TCP analysis drops segments it takes for retransmissions (a capture
            # whose segments all carry one sequence number): its preference, not a dissection
            print(f"{name}: hint: tshark dissected {result.tshark_apdus} APDUs, iec104 "
                  f"{result.our_apdus}; if tshark takes segments for retransmissions, run "
                  f"again with -o {seq_pref}", file=sys.stderr)
    return 1 if disagreements else 0
