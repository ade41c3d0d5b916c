"""The public API: experiments and examples import only public modules (never ``fvjax._src``),
and every public module's ``__all__`` lists names it really has."""

import ast
import importlib
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("experiments", "examples")
                 for p in (REPO / folder).rglob("*.py"))
PUBLIC = sorted(p.stem for p in (REPO / "fvjax").glob("*.py") if not p.stem.startswith("_"))


def private_imports(source: str) -> list[str]:
  """``"line: module"`` for each import of ``fvjax._src`` (or a name from it) in ``source``."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    else:
      continue
    found += [f"{node.lineno}: {n}" for n in names
              if n == "fvjax._src" or n.startswith("fvjax._src.")]
  return found


def test_the_checker_finds_private_imports():
  source = ("import fvjax\nfrom fvjax import _src\nimport fvjax._src.render as r\n"
            "from fvjax._src.data import image_folder\nfrom fvjax.data import map_batches\n"
            "def f():\n  from fvjax._src import digits\n")
  assert private_imports(source) == [
      "2: fvjax._src", "3: fvjax._src.render", "4: fvjax._src.data",
      "4: fvjax._src.data.image_folder", "7: fvjax._src", "7: fvjax._src.digits"]
  assert not private_imports("import fvjax\nfrom fvjax.reliability import fooling\n")


def test_there_are_scripts_to_check():
  assert len(SCRIPTS) >= 10 and any(p.parts[-2] == "examples" for p in SCRIPTS)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_scripts_use_only_the_public_api(path):
  assert not private_imports(path.read_text()), (
      f"{path.relative_to(REPO)} imports fvjax._src; use `fvjax` or a public submodule "
      "(add the name to the public module's __all__ if it is missing)")


@pytest.mark.parametrize("name", PUBLIC)
def test_public_module_all_names_exist(name):
  module = importlib.import_module(f"fvjax.{name}")
  assert isinstance(getattr(module, "__all__", None), (list, tuple)), \
      f"fvjax.{name} has no explicit __all__"
  missing = [n for n in module.__all__ if not hasattr(module, n)]
  assert not missing, f"fvjax.{name}.__all__ lists missing names {missing}"
  assert len(set(module.__all__)) == len(module.__all__), f"fvjax.{name}.__all__ repeats names"


def test_package_all_names_exist():
  import fvjax
  assert [n for n in fvjax.__all__ if not hasattr(fvjax, n)] == []


# the theory demonstration runs whole in seconds on a CPU: it has no smaller and larger scale
NO_SCALE = {"experiments/geirhos/impossibility/main.py"}


def scale_keys(folder: pathlib.Path) -> set[str]:
  """The string keys of every ``SCALES = {...}`` dict literal in the folder's Python files."""
  keys = set()
  for path in folder.glob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
          and any(isinstance(t, ast.Name) and t.id == "SCALES" for t in node.targets)):
        keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
  return keys


@pytest.mark.parametrize("main", sorted((REPO / "experiments").rglob("main.py")),
                         ids=lambda p: str(p.relative_to(REPO / "experiments").parent))
def test_every_experiment_is_ready_for_paper_scale(main):
  """Each experiment keeps ``--scale paper`` (the paper's sizes, for an accelerator)."""
  if str(main.relative_to(REPO)) in NO_SCALE:
    return
  assert '"--scale"' in main.read_text(), f"{main} has no --scale option"
  assert "paper" in scale_keys(main.parent), f"{main}: no 'paper' entry in SCALES"
