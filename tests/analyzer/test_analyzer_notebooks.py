"""The notebooks in ``notebooks/`` run top to bottom (nbclient, a real ipykernel), and are
committed with their outputs stripped.

Each runs with ``notebooks/`` as its working directory, as Jupyter would, on the bundled
captures in ``captures/`` (falling back to the public captures beside the checkout while
``captures/`` is empty). Matplotlib uses the non-interactive Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, public_captures_dir

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_at_least_three_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 3
    for topic in ("pcap", "command", "proxy"):
        assert any(topic in n for n in names), topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if not any((REPO_ROOT / "captures").glob("*.pcap*")):
        public_captures_dir()  # skip (fail in CI) when no capture at all is available
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports iec104 from this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            if output.get("name") == "stderr":
                assert "Traceback" not in output.get("text", ""), output["text"]
    images = sum(1 for cell in nb.cells for o in cell.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 1  # the plots rendered
