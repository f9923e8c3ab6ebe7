"""The package's layering (DEVELOPERS.md, "Layout"): imports point one way.

codec <- capture, records, driver; capture + records <- dissector, recorder;
records + dissector <- analyzer, verify; recorder <- scapy; everything <- cli. Every import
statement of every module is read with ``ast`` (also those inside functions and
``TYPE_CHECKING`` blocks: a lazy import is still a dependency), so a new module cannot slip
past.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from iec104.records.schema import markdown_table
from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "iec104"

# stage -> the stages it may import (besides itself); a stage is a top-level module or package
ALLOWED: dict[str, set[str]] = {
    "codec": set(),
    "driver": {"codec"},
    "capture": {"codec"},
    "records": {"codec"},
    "dissector": {"codec", "capture", "records"},
    "recorder": {"codec", "capture", "records", "dissector"},
    "analyzer": {"codec", "records", "dissector", "__init__"},
    "dataset": {"codec", "capture", "records", "dissector", "analyzer", "__init__"},
    "verify": {"codec", "records", "dissector"},
    "scapy": {"codec", "capture", "records", "dissector", "recorder"},
    "cli": {"codec", "capture", "records", "dissector", "recorder", "analyzer", "dataset",
            "verify", "scapy", "__init__"},
    "__init__": {"codec", "driver", "records", "dissector", "dataset"},
}


def _stage(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_stages(path: Path, source: str | None = None) -> set[tuple[str, int]]:
    """(stage, line) of every iec104 module that ``path`` (or ``source`` placed there)
    imports."""
    package = path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]
    found = set()
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
            else:
                target = tuple((node.module or "").split("."))
            if target[0] != "iec104":
                continue
            if len(target) == 1:  # "from iec104 import x": x may be a subpackage
                for alias in node.names:
                    found.add((alias.name if (PACKAGE / alias.name).exists()
                               or (PACKAGE / f"{alias.name}.py").exists() else "__init__",
                               node.lineno))
            else:
                found.add((target[1], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "iec104":
                    found.add((parts[1] if len(parts) > 1 else "__init__", node.lineno))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    stage = _stage(path)
    assert stage in ALLOWED, f"{stage}: a new top-level stage; add it to ALLOWED and DEVELOPERS.md"
    wrong = sorted((other, line) for other, line in _imported_stages(path)
                   if other != stage and other not in ALLOWED[stage])
    assert not wrong, f"{path.relative_to(REPO_ROOT)} imports " + ", ".join(
        f"{other} (line {line})" for other, line in wrong)


def test_cli_modules_do_not_import_each_other() -> None:
    """One thin module per subcommand: shared code lives in cli/common.py only (other
    modules of cli/ are one subcommand's helpers, e.g. read's oneline.py)."""
    from iec104.cli import SUBCOMMANDS

    cli = PACKAGE / "cli"
    subcommands = set(SUBCOMMANDS)
    for path in cli.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = {node.module} if node.module else {a.name for a in node.names}
                assert not names & subcommands - {path.stem}, (path.name, names)


def test_the_layering_check_sees_a_violation() -> None:
    """The check itself can fail: an analyzer import in the capture stage is reported."""
    reader = PACKAGE / "capture" / "reader.py"
    source = reader.read_text() + "\nfrom ..analyzer import frames\nimport iec104.cli\n"
    lines = source.count("\n")
    stages = _imported_stages(reader, source)
    assert {("analyzer", lines - 1), ("cli", lines)} <= stages


def _run_python(code: str) -> None:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it must succeed."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr


def test_codec_import_is_light() -> None:
    """``import iec104.codec`` loads neither asyncio (the driver) nor pyarrow (also in every
    ``--jobs`` worker process)."""
    code = ("import sys, iec104.codec\n"
            "heavy = [m for m in ('asyncio', 'pyarrow', 'iec104.driver') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    _run_python(code)


def test_package_faces_are_lazy() -> None:
    """``iec104.dissect``/``iec104.load``/the seed API resolve on first use."""
    code = ("import sys, iec104\n"
            "assert 'iec104.driver' not in sys.modules\n"
            "assert iec104.dissect.__module__ == 'iec104.dissector'\n"
            "assert iec104.load.__module__ == 'iec104.dataset.read'\n"
            "assert iec104.connect.__module__.startswith('iec104.driver')\n"
            "assert set(iec104.__all__) <= set(dir(iec104))\n")
    _run_python(code)


def test_readme_column_table_is_the_schema() -> None:
    """The README's column reference is :func:`markdown_table` of the schema, verbatim."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert markdown_table() in readme, (
        "README.md's Parquet column table differs from the schema; paste this:\n"
        + markdown_table())
