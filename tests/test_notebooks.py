"""The notebooks: committed executed, with their figures, and still executing.

The fast tests read the committed notebooks: their cells must be what their build script
writes (the scripts are the one way to rebuild them), every code cell must have run without an
error, and every cell tagged "figure" (or "figure-photos": it plots from the shared photos)
must hold an image output, so that the figures show on GitHub.

The slow tests execute each notebook at small sizes (FVJAX_NOTEBOOK_FAST=1) in a fresh kernel
with matplotlib's default (inline) backend; any cell error, a figure cell without an image or
a notebook without any image fails. Marked slow: the default suite skips them, `.ci/run` runs
them with `python -m pytest -q -m slow` after the README's test command.
"""

import importlib
import pathlib
import sys

import pytest

from tests.conftest import SHARED_PHOTOS

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# notebook -> (its build script, the cell list in it)
BUILDERS = {"feature_visualization_tour": ("build_notebooks", "FEATURE_VISUALIZATION_TOUR"),
            "attribution": ("build_attribution_notebook", "CELLS")}
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

nbformat = pytest.importorskip("nbformat", reason="notebook tests need the test extra")


def _builder(name):
  if str(NOTEBOOK_DIR) not in sys.path:
    sys.path.insert(0, str(NOTEBOOK_DIR))
  return importlib.import_module(name)


def _expected(path):
  module, cells = BUILDERS[path.stem]
  return _builder("build_notebooks").notebook(getattr(_builder(module), cells))


def _cells(nb):
  return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def problems(nb, *, photos: bool) -> list[str]:
  """What is wrong with the outputs of an executed notebook ``nb`` (empty when nothing)."""
  found, images = [], 0
  for i, cell in enumerate(nb.cells):
    if cell.cell_type != "code":
      continue
    outputs = cell.get("outputs", [])
    for o in outputs:
      if o.get("output_type") == "error":
        found.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}")
    if cell.get("execution_count") is None:
      found.append(f"cell {i} was not executed")
    pictures = sum("image/png" in o.get("data", {}) for o in outputs)
    images += pictures
    tags = cell.metadata.get("tags", [])
    if not pictures and ("figure" in tags or ("figure-photos" in tags and photos)):
      found.append(f"cell {i} is tagged {tags} but has no image/png output: "
                   f"{cell.source.splitlines()[0]!r}")
  if not images:
    found.append("no image output at all")
  return found


def test_every_notebook_has_a_build_script():
  assert set(IDS) == set(BUILDERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_cells_are_the_build_scripts(path):
  committed = nbformat.read(path, as_version=4)
  assert _cells(committed) == _cells(_expected(path)), (
      f"{path.name} differs from its build script: run python notebooks/"
      f"{BUILDERS[path.stem][0]}.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_has_its_figures(path):
  committed = nbformat.read(path, as_version=4)
  tags = [t for _, _, cell_tags in _cells(committed) for t in cell_tags]
  assert "figure" in tags
  assert problems(committed, photos=True) == []


def test_problems_are_found():
  """Outputs stripped, an error, a figure cell that printed text: each is reported."""
  nb = _expected(NOTEBOOKS[0])
  assert "no image output at all" in problems(nb, photos=True)
  assert any("not executed" in p for p in problems(nb, photos=True))
  figure = next(c for c in nb.cells if "figure" in c.metadata.get("tags", []))
  figure.execution_count = 1
  figure.outputs = [nbformat.v4.new_output("stream", name="stdout", text="no picture\n"),
                    nbformat.v4.new_output("error", ename="ValueError", evalue="bad",
                                           traceback=[])]
  found = problems(nb, photos=False)
  assert any("ValueError: bad" in p for p in found)
  assert any("has no image/png output" in p for p in found)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes(path, tmp_path, monkeypatch):
  nbclient = pytest.importorskip("nbclient", reason="notebook tests need the test extra")
  monkeypatch.setenv("FVJAX_NOTEBOOK_FAST", "1")
  monkeypatch.setenv("FVJAX_PHOTOS", str(SHARED_PHOTOS))
  monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own: matplotlib-inline
  notebook = nbformat.read(path, as_version=4)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      cell.outputs, cell.execution_count = [], None
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  assert problems(notebook, photos=SHARED_PHOTOS.is_dir()) == []
  assert not list(tmp_path.iterdir()), "the notebook wrote files into its working directory"
