import pathlib

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
