import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands():
  readme = (REPO / "README.md").read_text()
  block = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
  assert len(block) == 2 and block[0].startswith("pip install -e . && fvjax render")
  assert block[1] in (REPO / ".ci" / "run").read_text().splitlines()


def test_ci_runs_the_slow_tests_the_default_suite_leaves_out():
  ci = (REPO / ".ci" / "run").read_text().splitlines()
  assert "python -m pytest -q -m slow" in ci
  assert "addopts = \"-m 'not slow'\"" in (REPO / "pyproject.toml").read_text()


@pytest.mark.slow  # every loop example of the README run as written, ~16 s: CI runs it (-m slow)
def test_write_your_own_loop_examples_run_as_written(tiny_darknet, capsys):
  """The README's "Write your own loop" code blocks, executed as they stand."""
  import numpy as np
  readme = (REPO / "README.md").read_text()
  section = readme.split("## Write your own loop", 1)[1].split("\n## ", 1)[0]
  blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
  assert len(blocks) == 2
  namespace: dict = {}
  exec(compile(blocks[0], "README loop", "exec"), namespace)
  images, scores = namespace["images"], np.asarray(namespace["scores"])
  assert images.shape == (4, 1, 64, 64, 3)
  assert np.all(scores[:, -4:].mean(axis=1) > scores[:, :4].mean(axis=1))  # the objective rises
  exec(compile(blocks[1], "README objective", "exec"), namespace)
  final = namespace["result"].final
  assert final.shape == (3,) and np.all(final > 0.2) and np.all(final < 1.0)
