import json
import subprocess
import sys

import numpy as np
import pytest

from fvjax._src import cli


def test_render_end_to_end(tmp_path, capsys):
  out = tmp_path / "out"
  code = cli.main(["render", "--model", "tiny-darknet", "--layer", "leaky_re_lu_4",
                   "--channels", "0:4", "--out", str(out), "--steps", "8", "--size", "32",
                   "--snapshots", "4", "--seed", "1"])
  assert code == 0
  with np.load(out / "images.npz") as npz:
    images = npz["images"]
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert npz["trace"].shape == (4, 8) and npz["snapshot_4"].shape == (4, 32, 32, 3)
  result = json.loads((out / "result.json").read_text())
  assert result["config"]["layer"] == "leaky_re_lu_4" and result["config"]["channels"] == [0, 1, 2, 3]
  assert [u["channel"] for u in result["units"]] == [0, 1, 2, 3]
  assert all(np.isfinite(u["final_objective"]) for u in result["units"])
  assert (out / "grid.png").stat().st_size > 1000


def test_layers_lists_every_layer_with_shape(capsys):
  assert cli.main(["layers", "--model", "tiny-darknet"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert any(line.split() == ["leaky_re_lu_8", "28x28x256"] for line in lines)
  assert any(line.split() == ["logits", "1000"] for line in lines)
  assert len(lines) == 1 + 51


@pytest.mark.parametrize("args, message", [
    (["--layer", "nope"], "unknown layer 'nope'.*valid layers: conv2d_1"),
    (["--layer", "conv2d_1", "--channels", "3:x"], "malformed --channels '3:x'"),
    (["--layer", "conv2d_1", "--channels", "5:5"], "malformed --channels '5:5'"),
    (["--layer", "conv2d_1", "--channels", "10:20"], "channel index 16 is out of range.*16 channels"),
    (["--layer", "conv2d_1", "--size", "8"], "image size 8 is smaller"),
    (["--model", "vgg", "--layer", "x"], "unknown model 'vgg'; valid models: tiny-darknet"),
])
def test_bad_input_gets_one_clear_error(tmp_path, capsys, args, message):
  import re
  assert cli.main(["render", "--out", str(tmp_path / "o"), *args]) == 2
  err = capsys.readouterr().err
  assert re.search(message, err), err
  assert not (tmp_path / "o").exists()


def test_console_script_is_installed():
  done = subprocess.run([sys.executable, "-m", "fvjax._src.cli", "layers"], capture_output=True,
                        text=True, check=True)
  assert "conv2d_16" in done.stdout


def test_render_objective_expression_directions_and_maco(tmp_path):
  out = tmp_path / "expr"
  assert cli.main(["render", "--objective", "channel:leaky_re_lu_4:3 + 10*diversity:leaky_re_lu_4",
                   "--batch", "2", "--out", str(out), "--steps", "4", "--size", "32",
                   "--snapshots", "2,4", "--no-progress"]) == 0
  with np.load(out / "images.npz") as npz:
    assert npz["images"].shape == (1, 2, 32, 32, 3) and npz["snapshot_2"].shape == (1, 2, 32, 32, 3)
  assert (out / "snapshots.png").exists()
  out = tmp_path / "dirs"
  assert cli.main(["render", "--layer", "leaky_re_lu_4", "--directions", "3", "--preset", "maco",
                   "--out", str(out), "--steps", "4", "--size", "32", "--no-progress"]) == 0
  result = json.loads((out / "result.json").read_text())
  assert result["config"]["directions"] == 3 and len(result["units"]) == 3
  assert "MACO" in result["config"]["param"]


def test_diversity_without_batch_is_refused(tmp_path, capsys):
  assert cli.main(["render", "--objective", "channel:conv2d_1:0 + diversity:conv2d_1",
                   "--out", str(tmp_path / "x")]) == 2
  assert "add --batch" in capsys.readouterr().err


def test_sweep_cli_writes_grid_and_resumes(tmp_path, capsys):
  args = ["sweep", "--layer", "leaky_re_lu_4", "--channels", "0:2", "--learning-rate", "0.02,0.1",
          "--tv-weight", "0,1", "--steps", "4", "--size", "32", "--settings-per-chunk", "2",
          "--out", str(tmp_path), "--no-progress"]
  assert cli.main(args) == 0
  result = json.loads((tmp_path / "results.json").read_text())
  assert len(result["settings"]) == 4 and result["computed_chunks"] == [0, 1]
  assert all(len(s["final_objective"]) == 2 for s in result["settings"])
  with np.load(tmp_path / "images.npz") as npz:
    assert npz["images"].shape == (4, 2, 32, 32, 3)
  assert cli.main(args) == 0
  assert json.loads((tmp_path / "results.json").read_text())["loaded_chunks"] == [0, 1]
  assert cli.main(args[:-3] + ["--learning-rate", "fast", "--out", str(tmp_path)]) == 2
  assert "malformed --learning-rate 'fast'" in capsys.readouterr().err


def test_second_render_in_a_new_process_loads_the_compiled_loop_from_the_cache(tmp_path):
  import os
  env = dict(os.environ, FVJAX_CACHE_DIR=str(tmp_path / "cache"), JAX_LOG_COMPILES="1")
  command = [sys.executable, "-m", "fvjax._src.cli", "render", "--layer", "leaky_re_lu_4",
             "--channels", "0:2", "--steps", "4", "--size", "32", "--no-progress"]
  runs = [subprocess.run(command + ["--out", str(tmp_path / f"o{i}")], env=env,
                         capture_output=True, text=True, check=True) for i in range(2)]
  assert any("_run_all" in name for name in os.listdir(tmp_path / "cache")), os.listdir(
      tmp_path / "cache")
  assert "Persistent compilation cache hit for 'jit__run_all'" not in runs[0].stderr
  assert "Persistent compilation cache hit for 'jit__run_all'" in runs[1].stderr, runs[1].stderr[-2000:]
  first = np.load(tmp_path / "o0" / "images.npz")["images"]
  second = np.load(tmp_path / "o1" / "images.npz")["images"]
  np.testing.assert_array_equal(first, second)  # the cached program computes the same
