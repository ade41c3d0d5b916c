"""Execute every notebook at small sizes (FVJAX_NOTEBOOK_FAST=1); any cell error fails.

Marked slow (128 s + 78 s on 2 AMD EPYC cores): the default suite skips them, `.ci/run` runs them
with `python -m pytest -q -m slow` after the README's test command.
"""

import os
import pathlib

import pytest

from tests.conftest import SHARED_PHOTOS

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat", reason="notebook tests need the test extra")
  nbclient = pytest.importorskip("nbclient", reason="notebook tests need the test extra")
  monkeypatch.setenv("FVJAX_NOTEBOOK_FAST", "1")
  monkeypatch.setenv("FVJAX_PHOTOS", str(SHARED_PHOTOS))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  notebook = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  errors = [o for cell in notebook.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors
