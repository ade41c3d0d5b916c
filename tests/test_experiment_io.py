import json
import math
import pathlib
import re

import jax.numpy as jnp
import numpy as np

import fvjax
from fvjax import experiment


def test_jsonable_nested_numpy_and_jax():
  x = {1: (np.float32(0.5), np.int64(3), np.bool_(True)),
       "a": [np.arange(3), jnp.asarray([[1.5, 2.0]]), jnp.int32(7)],
       "s": "text", "n": None}
  out = experiment.jsonable(x)
  assert out == {"1": [0.5, 3, True], "a": [[0, 1, 2], [[1.5, 2.0]], 7], "s": "text", "n": None}
  assert type(out["1"][0]) is float and type(out["1"][1]) is int and type(out["1"][2]) is bool
  assert type(out["a"][2]) is int
  json.dumps(out, allow_nan=False)


def test_jsonable_non_finite_to_none():
  out = experiment.jsonable([math.nan, np.float64(np.inf), -math.inf, np.array([1.0, np.nan])])
  assert out == [None, None, None, [1.0, None]]


def test_jsonable_rounding():
  x = {"f": 1.23456789, "g": np.float32(2.5e-7), "i": 12345678, "v": np.array([0.1234567])}
  assert experiment.jsonable(x, digits=6) == {"f": 1.234568, "g": 0.0, "i": 12345678,
                                              "v": [0.123457]}
  assert experiment.jsonable(1.23456789) == 1.23456789


def test_write_json_round_trip(tmp_path):
  path = tmp_path / "sub" / "out.json"
  experiment.write_json(path, {"a": np.float32(0.125), "b": [np.nan, 1.0 / 3]}, digits=3)
  assert json.loads(path.read_text()) == {"a": 0.125, "b": [None, 0.333]}
  assert path.read_text().startswith('{\n  "a"')


def test_shared_photos_dir(monkeypatch, tmp_path):
  monkeypatch.setenv("FVJAX_PHOTOS", str(tmp_path))
  assert experiment.shared_photos_dir() == tmp_path
  for var in ("FVJAX_PHOTOS", "FVJAX_SHARED_PHOTOS", "FVJAX_SHARED"):
    monkeypatch.delenv(var, raising=False)
  repo = pathlib.Path(fvjax.__file__).resolve().parents[1]
  assert experiment.shared_photos_dir() == repo.parent / "shared" / "data" / "imagenet-sample"


def test_log(capsys):
  experiment.log("hello")
  assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] hello\n", capsys.readouterr().out)
