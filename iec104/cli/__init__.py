"""The ``iec104`` command line (tshark-like habits).

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int`` (exit
code). Register a module by adding its name to :data:`SUBCOMMANDS`.

Exit codes: 0 success, 1 the input had errors that were reported (e.g. malformed
frames, with ``--strict``), 2 bad usage or an unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__

SUBCOMMANDS: tuple[str, ...] = ("read", "convert", "summary", "report", "proxy", "capture")
"""Module names (in this package) of the subcommands, in help order."""


class CliError(Exception):
    """A clear user-facing error: printed as ``iec104: <message>`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iec104", description="IEC 60870-5-104 toolkit: read, filter, convert, "
        "summarize captures; proxy, capture and simulate live traffic.")
    parser.add_argument("--version", action="version", version=f"iec104 {__version__}")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity on stderr (default WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        sp = module.add_parser(sub)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s "
                        "%(message)s", stream=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except CliError as exc:
        print(f"iec104: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly like other Unix tools
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
