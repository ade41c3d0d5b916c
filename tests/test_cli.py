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


@pytest.mark.slow  # CLI renders of expressions, directions and MaCo, ~14 s: CI runs it (-m slow)
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


@pytest.mark.slow  # two CLI processes and a persistent cache, ~17 s: CI runs it (-m slow)
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


RENDER = ["render", "--layer", "leaky_re_lu_4", "--channels", "0:2", "--steps", "4", "--size",
          "32", "--no-progress"]


def test_bad_out_is_refused_before_any_work(tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  assert cli.main(RENDER + ["--out", str(a_file)]) == 2
  assert "is a file" in capsys.readouterr().err
  assert cli.main(RENDER + ["--out", str(a_file / "sub")]) == 2  # under a file: cannot write
  err = capsys.readouterr().err
  assert "cannot write to --out" in err and len(err.strip().splitlines()) == 1


def test_an_earlier_run_is_kept_unless_overwrite(tmp_path, capsys):
  out = tmp_path / "out"
  assert cli.main(RENDER + ["--out", str(out), "--snapshots", "2"]) == 0
  before = (out / "images.npz").read_bytes()
  assert cli.main(RENDER + ["--out", str(out), "--seed", "5"]) == 2
  assert "holds the outputs of another run" in capsys.readouterr().err
  assert (out / "images.npz").read_bytes() == before  # nothing lost
  assert cli.main(RENDER + ["--out", str(out), "--seed", "5", "--overwrite"]) == 0
  assert not (out / "snapshots.png").exists()  # the stale file of the earlier run is gone
  assert (out / "images.npz").read_bytes() != before


def test_divergence_keeps_the_partial_result_and_exits_3_in_one_line(tmp_path, capsys):
  out = tmp_path / "nan"  # Adam at lr 1e38: the parameters overflow and the image turns NaN
  code = cli.main(["render", "--layer", "leaky_re_lu_4", "--channels", "0:2", "--steps", "8",
                   "--size", "32", "--no-progress", "--lr", "1e38", "--out", str(out)])
  err = capsys.readouterr().err.strip()
  assert code == 3 and len(err.splitlines()) == 1 and "at step" in err, err
  stopped = json.loads((out / "result.json").read_text())["diverged"]
  assert 1 <= stopped["step"] <= 8 and stopped["kept_steps"] < stopped["step"]
  if stopped["kept_steps"]:
    with np.load(out / "images.npz") as npz:
      assert np.isfinite(npz["images"]).all()
      assert npz["trace"].shape[1] == stopped["kept_steps"]


def test_sweep_refuses_chunks_of_other_weights_and_recomputes_corrupt_ones(tmp_path,
                                                                          tiny_darknet):
  import jax
  import jax.numpy as jnp
  import fvjax
  objective = fvjax.objectives.channel("leaky_re_lu_4", jnp.arange(2))
  kwargs = dict(key=jax.random.key(0), grid={"learning_rate": [0.02, 0.05]}, steps=2, size=32,
                settings_per_chunk=1, out=str(tmp_path), progress=False)
  first = fvjax.sweep(tiny_darknet, objective, **kwargs)
  other = tiny_darknet.replace(params=jax.tree.map(lambda x: x * 1.01, tiny_darknet.params))
  with pytest.raises(fvjax.FvjaxError, match="its weights differ"):
    fvjax.sweep(other, objective, **kwargs)
  with pytest.raises(fvjax.FvjaxError, match="settings .*differ"):
    fvjax.sweep(tiny_darknet, objective, transforms=fvjax.transforms.identity(), **kwargs)
  chunk = tmp_path / "sweep_chunks" / "chunk_0001.npz"
  chunk.write_bytes(chunk.read_bytes()[:100])  # truncated by a crash or a full disk
  with pytest.warns(UserWarning, match="chunk_0001.npz is unreadable"):
    again = fvjax.sweep(tiny_darknet, objective, **kwargs)
  assert again.loaded == [0] and again.computed == [1]
  np.testing.assert_array_equal(again.images, first.images)
