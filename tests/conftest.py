"""Shared fixtures: the vendored Tiny Darknet and the optional ../shared data."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("FVJAX_SHARED", REPO.parent / "shared"))
SHARED_MODEL = SHARED / "models" / "tiny-darknet"
SHARED_PHOTOS = SHARED / "data" / "imagenet-sample"

needs_shared = pytest.mark.skipif(
    not (SHARED_MODEL / "model.json").exists() or not SHARED_PHOTOS.is_dir(),
    reason=f"needs the shared Tiny Darknet and ImageNet photos at {SHARED} (../shared beside "
           "the checkout, or set FVJAX_SHARED); a fresh user machine does not have them")


@pytest.fixture(scope="session")
def tiny_darknet():
  import fvjax
  return fvjax.zoo.load("tiny-darknet")

# The CLI keeps JAX's persistent compilation cache under the user's cache folder; tests that
# call the CLI in-process must not write there (tests/test_cli.py turns it on explicitly).
os.environ.setdefault("FVJAX_CACHE_DIR", "off")


@pytest.fixture
def run_on_simulated_devices():
  """``run(script, devices) -> stdout``: ``python -c script`` in a fresh process whose CPU
  shows ``devices`` XLA devices; fails the test with the process's stderr if it fails."""
  import subprocess
  import sys

  def run(script: str, devices: int) -> str:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout

  return run
