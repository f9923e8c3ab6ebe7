"""What the commands of the capture -> rows path (convert, read) import: never pandas (0.3 s
of CPU at every start, imported by pyarrow on the first ``pa.array``/``pa.scalar``/``to_numpy``;
``iec104/records/arrays.py`` builds arrays without it), nor asyncio (only the proxy needs it).

Each command runs as a real subprocess under ``python -X importtime``, whose stderr lists
every module imported; the summary command, which uses the analyzer (pandas), shows that
the listing sees pandas when it is there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import public_capture
from tests.support import cli

_IMPORT = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|( *)([\w.]+)$")


def imported(*args: str | Path) -> set[str]:
    """The top-level names of the modules ``iec104 ARGS`` imported (exit code 0 or 1)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "iec104.cli",
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=cli.env(), stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    names = {m.group(2).split(".")[0] for line in proc.stderr.splitlines()
             if (m := _IMPORT.match(line))}
    assert {"pyarrow", "iec104"} <= names  # the listing was read
    return names


@pytest.mark.parametrize("capture, options", [
    (cli.STATION, ()),
    (cli.COMMANDS, ("--filter", "C_SC_NA_1 and ActCon or time > '2020-01-01'")),
    ("iti_test-dissect-iec104-malformed.pcap", ()),  # malformed: the scalar path
    ("emre_104deneme-many-typeids.pcap", ("--filter", "ioa in (1, 2, None)")),
])
def test_convert_imports_neither_pandas_nor_asyncio(tmp_path: Path, capture: Path | str,
                                                    options: tuple[str, ...]) -> None:
    source = capture if isinstance(capture, Path) else public_capture(capture)
    names = imported("convert", source, "-o", tmp_path / "out.parquet", "-q", *options)
    assert "pandas" not in names
    assert "asyncio" not in names


@pytest.mark.parametrize("options", [
    (), ("-t", "r"), ("-t", "e"), ("-V",), ("-T", "json"), ("-T", "fields", "-e", "ioa"),
    ("--filter", "C_SC_NA_1 and ActCon or time > '2020-01-01'"),
    ("--start", "2020-01-01", "--end", "2040-01-01T08:00"),
])
def test_read_imports_neither_pandas_nor_asyncio(options: tuple[str, ...]) -> None:
    names = imported("read", cli.COMMANDS, *options)
    assert "pandas" not in names
    assert "asyncio" not in names


@pytest.mark.parametrize("capture", ["iti_test-dissect-iec104-malformed.pcap",
                                     "emre_iec104-baselines-seq-gaps.pcap"])
def test_read_of_malformed_octets_and_gaps_imports_no_pandas(capture: str) -> None:
    # their lines are made apart from the others' (cli.oneline's notes)
    assert "pandas" not in imported("read", public_capture(capture))


def test_read_of_parquet_imports_no_pandas(tmp_path: Path) -> None:
    out = tmp_path / "commands.parquet"
    imported("convert", cli.COMMANDS, "-o", out, "-q")
    assert "pandas" not in imported("read", out, "-t", "r", "--start", "2020-01-01")


# Not here: read of a dataset directory, or of a Parquet file with --filter (row groups
# pruned by statistics), imports pyarrow.dataset, whose own module init asks pyarrow
# whether pandas is there (pyarrow/_dataset.pyx builds Expression._scalar(True)), so pandas
# comes with it.


def test_the_listing_sees_pandas_where_it_is_used() -> None:
    assert "pandas" in imported("summary", cli.STATION)
