"""Plotting leaves matplotlib's backend alone, writes PNGs and returns figures.

fvjax draws on `matplotlib.figure.Figure` objects directly (no pyplot, no `matplotlib.use`),
so `import fvjax` in Jupyter keeps the inline backend and figures keep showing. A subprocess
started with ``MPLBACKEND=svg`` imports every fvjax module and calls every plot function; the
backend must still be ``svg`` afterwards. In this process each plot function must write a
PNG of its figure's size at ``path`` and, with no path, return a figure whose PNG repr (what
Jupyter shows) is the same picture.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

import fvjax
import fvjax.plot
from fvjax import attribution as A
from fvjax._src.dataset_examples import DatasetExamples, Examples

REPO = pathlib.Path(__file__).resolve().parents[1]


def _model() -> fvjax.Model:
  """A 3x3 convolution with 6 channels ('conv', its weights under a 'kernel' leaf, as the
  filter grid looks for) and 4 logits."""
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"conv": {"kernel": jax.random.normal(k1, (3, 3, 3, 6))},
            "dense": {"kernel": jax.random.normal(k2, (6, 4))}}

  def fn(params, x):
    conv = jax.lax.conv_general_dilated(x, params["conv"]["kernel"], (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return {"conv": conv, "logits": conv.mean((1, 2)) @ params["dense"]["kernel"]}

  return fvjax.Model.from_fn(fn, params, input_size=(16, 16), name="toy")


def _examples(rng) -> DatasetExamples:
  def kept(k):  # the panel reads images and scores; the other fields stay None
    fields = dict.fromkeys(Examples._fields)
    fields.update(images=rng.uniform(size=(2, k, 8, 8, 3)), scores=rng.normal(size=(2, k)))
    return Examples(**fields)
  return DatasetExamples(top=kept(3), bottom=kept(2), units=("conv:0", "conv:1"), count=10)


def plot_calls():
  """name -> (function, args before path, keyword args): one call of every plot function."""
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(4, 8, 8, 3)).astype(np.float32)
  maps = rng.uniform(size=(4, 8, 8)).astype(np.float32)
  model = _model()
  return {
      "image_grid": (fvjax.plot.image_grid, (images,), {"labels": list("abcd"), "title": "t"}),
      "image_grid_cmap": (fvjax.plot.image_grid, (maps,), {"cmap": "viridis"}),
      "snapshot_strip": (fvjax.plot.snapshot_strip, ({4: images[:2], 16: images[2:]},),
                         {"labels": ["u0", "u1"]}),
      "interpolation_strip": (fvjax.plot.interpolation_strip, (np.concatenate([images] * 2)[:5],),
                              {"start": "a", "end": "b"}),
      "objective_curves": (fvjax.plot.objective_curves,
                           ({"one": np.arange(10.0), "band": rng.normal(size=(3, 10))},),
                           {"title": "curves"}),
      "dataset_examples_panel": (fvjax.plot.dataset_examples_panel, (images[:2], _examples(rng)),
                                 {"title": "examples"}),
      "filter_grid": (A.filter_grid, (model,), {}),
      "activation_grid": (A.activation_grid, (model, images[0], "conv"), {}),
      "attribution_panel": (A.attribution_panel, (images[:2], {"m": maps[:2], "rgb": images[2:]}),
                            {"labels": ["x", "y"], "overlay_maps": True}),
      "sanity_curves": (A.sanity_curves, ({"m": rng.uniform(size=(2, 3))}, ["o", "l2", "l1"]),
                        {"title": "sanity"}),
      "deletion_bars": (A.deletion_bars, ({"m": np.array([0.1, 0.3]), "n": np.array([0.2])},),
                        {}),
  }


def draw_all(out: str) -> dict[str, tuple[str, object]]:
  """Every plot function once with a path under ``out`` and once without one."""
  drawn = {}
  for name, (fn, args, kwargs) in plot_calls().items():
    path = fn(*args, os.path.join(out, name, f"{name}.png"), **kwargs)
    drawn[name] = (path, fn(*args, **kwargs))
  return drawn


def _pixels(png: bytes | str) -> np.ndarray:
  with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as image:
    assert image.format == "PNG"
    return np.asarray(image.convert("RGBA"))


def test_import_and_plotting_keep_the_backend(tmp_path):
  script = textwrap.dedent(f"""
      import importlib, json, pkgutil, sys
      import matplotlib
      import fvjax
      skipped = []
      for info in pkgutil.walk_packages(fvjax.__path__, "fvjax."):
        try:
          importlib.import_module(info.name)
        except ImportError as e:  # optional dependencies (torch, tensorflow-datasets)
          skipped.append(f"{{info.name}}: {{e}}")
      after_import = matplotlib.get_backend()
      pyplot_after_import = "matplotlib.pyplot" in sys.modules
      from tests.test_plot_backend import draw_all
      draw_all({str(tmp_path)!r})
      after_plots = matplotlib.get_backend()
      pyplot_after_plots = "matplotlib.pyplot" in sys.modules
      import matplotlib.pyplot as plt
      print(json.dumps(dict(after_import=after_import, after_plots=after_plots,
                            pyplot_after_import=pyplot_after_import,
                            pyplot_after_plots=pyplot_after_plots,
                            pyplot_figures=plt.get_fignums(), skipped=skipped)))
      """)
  env = dict(os.environ, MPLBACKEND="svg", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
  run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  report = json.loads(run.stdout.strip().splitlines()[-1])
  assert report["after_import"] == "svg", report
  assert report["after_plots"] == "svg", report
  assert report["pyplot_after_plots"] == report["pyplot_after_import"], \
      "a plot function imported pyplot"
  assert report["pyplot_figures"] == [], "figures were registered with pyplot"


def test_plots_write_pngs_and_return_figures(tmp_path):
  drawn = draw_all(str(tmp_path))
  assert set(drawn) == set(plot_calls())
  for name, (path, fig) in drawn.items():
    assert path == str(tmp_path / name / f"{name}.png"), name
    assert isinstance(fig, matplotlib.figure.Figure), name
    written = _pixels(path)
    expected = fig.get_size_inches()[::-1] * fig.dpi  # height, width: +-1 px of rounding
    assert np.abs(np.array(written.shape[:2]) - expected).max() <= 1, (name, written.shape)
    assert written[..., :3].std() > 5, f"{name}: a blank picture"
    shown = _pixels(fig._repr_png_())  # what IPython displays for a returned figure
    np.testing.assert_array_equal(shown, written, err_msg=name)
  # a few sizes worked out by hand (figsize in inches x 100 dpi)
  sizes = {name: Image.open(path).size for name, (path, _) in drawn.items()}
  # 2 x 2 tiles of 1.6", each row with a 7-pt label line (1.5 x 7/72 + 0.05"), and the
  # title's 9-pt line (0.1 + 1.5 x 9/72"): 2 x 1.7958 + 0.2875 = 3.879"
  assert sizes["image_grid"] == (320, 387)
  assert sizes["interpolation_strip"] == (700, 170)  # 5 tiles of 1.4" + 0.3"
  assert sizes["objective_curves"] == (500, 320)


def test_returned_figure_shows_as_png_in_ipython():
  ipython = pytest.importorskip("IPython.core.formatters")
  fig = fvjax.plot.image_grid(np.full((1, 4, 4, 3), 0.5))
  formatted, _ = ipython.DisplayFormatter().format(fig)
  assert "image/png" in formatted
  assert _pixels(formatted["image/png"]).shape[:2] == (165, 160)  # 1.6" + 0.05" margin
