"""The README's dataset recipes run as written: the `iec104 sql` questions, pandas through
``iec104.dataset.load``, and DuckDB, Polars, Dask DataFrame, pandas and Spark (local mode)
reading the folder themselves, each in its own process in a folder holding ``ds``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from iec104.dataset import connect, convert_many
from tests.conftest import REPO_ROOT
from tests.support import cli
from tests.support.captureset import write_capture_set

README = (REPO_ROOT / "README.md").read_text()
DATASETS = README[README.index("## Datasets"):README.index("## Codec")]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DATASETS, re.DOTALL)


def _recipe(title: str) -> str:
    return next(b for b in _blocks("python") if b.startswith(f"# {title}"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines")
    captures = write_capture_set(root / "captures", ring_files=6, stations=6)
    convert_many([str(p) for p in captures], str(root / "ds"), workers=0)
    return root


def _run(code: str, cwd: Path, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False, env=cli.env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _rows_by_date(folder: Path) -> dict[str, int]:
    con = connect(folder / "ds")
    return {str(d): n for d, n in con.sql("SELECT date, count(*) FROM iec104 GROUP BY ALL")
            .fetchall()}


def test_five_sql_questions(folder: Path) -> None:
    questions = _blocks("sql")
    assert len(questions) == 5
    answers = []
    for query in questions:
        proc = cli.run("sql", folder / "ds", query)
        assert proc.returncode == 0, proc.stderr
        answers.append(proc.stdout)
    assert "C_SC_NA_1" in answers[0]       # the generated captures hold commands
    assert "ioa" in answers[1].splitlines()[0]
    assert "1000" in answers[3]             # measurements 1000-1009 in that hour
    assert "capture" in answers[4].splitlines()[0]


def test_load_snippet(folder: Path) -> None:
    code = next(b for b in _blocks("python") if "from iec104.dataset import load" in b)
    out = _run(code, folder)
    assert "value" in out or "station_" in out


def test_duckdb_recipe(folder: Path) -> None:
    out = _run(_recipe("DuckDB"), folder)
    for day, rows in _rows_by_date(folder).items():
        assert re.search(rf"{day}\s*│\s*\d+\s*│\s*{rows}\b", out), out


def test_polars_recipe(folder: Path) -> None:
    out = _run(_recipe("Polars"), folder)
    (pairs,), = connect(folder / "ds").sql(
        "SELECT count(DISTINCT (capture, stream)) FROM iec104 WHERE apci = 'I'").fetchall()
    assert f"shape: ({pairs}, 3)" in out, out


def test_dask_recipe(folder: Path) -> None:
    out = _run(_recipe("Dask DataFrame"), folder)
    counts = dict(connect(folder / "ds").sql(
        "SELECT type_name, count(ioa) FROM iec104 WHERE type_name IS NOT NULL GROUP BY ALL")
        .fetchall())
    for name, n in counts.items():
        assert re.search(rf"{name}\s+{n}\b", out), out


def test_pandas_recipe(folder: Path) -> None:
    out = _run(_recipe("pandas"), folder)
    assert "station_00.pcapng@" in out and "count" in out


@pytest.mark.slow
def test_spark_recipe(folder: Path) -> None:
    out = _run(_recipe("Spark"), folder, timeout=600)
    for day, rows in _rows_by_date(folder).items():
        assert re.search(rf"\|{day}\|\s*\d+\|\s*{rows}\|", out), out
