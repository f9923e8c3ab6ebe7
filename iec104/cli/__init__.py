"""The ``iec104`` command line (tshark-like habits).

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int`` (exit
code). Register a module by adding its name to :data:`SUBCOMMANDS`.

Exit codes: 0 success, 1 an input was damaged and the damage was reported (a warning on
stderr; everything else was decoded), 2 bad usage or an unreadable input or output, 130
interrupted. The input subcommands share their options, checks and exit-status text
(:mod:`iec104.cli.read`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..codec.errors import Iec104Error

SUBCOMMANDS: tuple[str, ...] = ("read", "convert", "summary", "report", "files", "sql", "proxy",
                                 "capture", "verify", "export")
"""Module names (in this package) of the subcommands, in help order."""


class CliError(Iec104Error):
    """A clear user-facing error: printed as ``iec104: <message>`` with exit code 2."""


def _add_log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--log-level", default=default,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity on stderr (default WARNING)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iec104", description="IEC 60870-5-104 toolkit: read, filter, convert, "
        "summarize and report on captures; proxy, record and capture live traffic.")
    parser.add_argument("--version", action="version", version=f"iec104 {__version__}")
    _add_log_level(parser, "WARNING")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        sp = module.add_parser(sub)
        # after the subcommand too; SUPPRESS keeps a value given before it
        _add_log_level(sp, argparse.SUPPRESS)
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
