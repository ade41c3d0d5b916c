"""fvjax atlas: a tiny atlas of Tiny Darknet (2 layers x 2 units, 4 steps, 32 px) built with
an interruption after its first batch and resumed (one compile of the loop per layer), then
opened in a real headless Chromium:
every page loads without a console error, every image decodes, every link resolves to a file
of the atlas, the jump box goes to the unit; batches of other settings are refused or, with
``overwrite``, recomputed."""

import os
import pathlib
import shutil
import tempfile
import urllib.parse

import jax
import numpy as np
import pytest

import fvjax
import fvjax.atlas
from fvjax.data import image_folder
from tests.conftest import SHARED_PHOTOS

# a whole atlas build and a browser session, ~30 s: CI runs them (-m slow)
pytestmark = pytest.mark.slow

LAYERS = ["leaky_re_lu_1", "leaky_re_lu_2"]
SETTINGS = dict(units="0:2", steps=4, size=32, k=2, batch_units=1, progress=False)


class Interrupted(Exception):
  """Raised from on_batch: a real interruption of a build in progress."""


def _images():
  """Ten of the shared photos, or (without ../shared) ten generated smooth images."""
  if SHARED_PHOTOS.is_dir():
    return image_folder(str(SHARED_PHOTOS), 224, crop=True, limit=10)
  rng = np.random.default_rng(0)
  coarse = rng.random((10, 7, 7, 3), np.float32)
  return np.repeat(np.repeat(coarse, 32, axis=1), 32, axis=2)  # [10, 224, 224, 3]


@pytest.fixture(scope="module")
def built(tiny_darknet):
  """(out, images, the resumed build's result, batch 0's mtime before the resume)."""
  out = pathlib.Path(tempfile.mkdtemp(prefix="fvjax_atlas_"))
  images = _images()
  key = jax.random.key(0)

  def stop_after_first(layer, index):
    raise Interrupted(f"{layer} batch {index}")

  with pytest.raises(Interrupted):
    fvjax.atlas.build(tiny_darknet, LAYERS, images, str(out), key=key,
                      on_batch=stop_after_first, **SETTINGS)
  first = out / "_build" / "leaky_re_lu_1" / "batch_0000.npz"
  assert first.exists() and not (out / "index.html").exists()
  stamp = first.stat().st_mtime_ns
  with fvjax.count_compiles() as log:
    result = fvjax.atlas.build(tiny_darknet, LAYERS, images, str(out), key=key, **SETTINGS)
  # leaky_re_lu_1's loop was compiled before the interruption (JAX's in-memory cache);
  # leaky_re_lu_2's two batches share one compile.
  assert log.count("_run_all") == 1, log.names
  yield out, images, result, stamp
  shutil.rmtree(out, ignore_errors=True)


def test_resume_after_interruption(built):
  out, _, result, stamp = built
  assert result.loaded == [("leaky_re_lu_1", 0)]
  assert result.computed == [("leaky_re_lu_1", 1), ("leaky_re_lu_2", 0), ("leaky_re_lu_2", 1)]
  assert (out / "_build" / "leaky_re_lu_1" / "batch_0000.npz").stat().st_mtime_ns == stamp
  for layer in LAYERS:
    for unit in (0, 1):
      assert (out / layer / f"{unit}.html").exists()
      assert (out / layer / "img" / f"{unit}.webp").exists()


def test_other_settings_are_refused_or_recomputed(built, tiny_darknet):
  out, images, _, _ = built
  copy = pathlib.Path(tempfile.mkdtemp(prefix="fvjax_atlas_other_")) / "atlas"
  shutil.copytree(out, copy)
  try:
    other = dict(SETTINGS, steps=5)
    with pytest.raises(fvjax.FvjaxError, match="steps"):
      fvjax.atlas.build(tiny_darknet, LAYERS, images, str(copy), key=jax.random.key(0), **other)
    with pytest.raises(fvjax.FvjaxError, match="keys"):  # another seed: other unit keys
      fvjax.atlas.build(tiny_darknet, LAYERS, images, str(copy), key=jax.random.key(1),
                        **SETTINGS)
    result = fvjax.atlas.build(tiny_darknet, LAYERS, images, str(copy), key=jax.random.key(0),
                               overwrite=True, **other)
    assert result.loaded == [] and len(result.computed) == 4
    again = fvjax.atlas.build(tiny_darknet, LAYERS, images, str(copy), key=jax.random.key(0),
                              **other)
    assert again.computed == [] and len(again.loaded) == 4
  finally:
    shutil.rmtree(copy.parent, ignore_errors=True)


def test_bad_input_is_refused_before_work(tiny_darknet, tmp_path):
  images = np.zeros((6, 224, 224, 3), np.float32)
  key = jax.random.key(0)
  cases = [(dict(layers=["logits"]), "spatial"), (dict(layers=["nope"]), "unknown layer"),
           (dict(layers=LAYERS, units="40"), "valid: 0..15"),
           (dict(layers=LAYERS, units="a:b"), "malformed units"),
           (dict(layers=LAYERS, diversity=1), "diversity"),
           (dict(layers=LAYERS, image_format="gif"), "image_format"),
           (dict(layers=LAYERS, k=6), "more than k=6")]
  for kwargs, message in cases:
    with pytest.raises(fvjax.FvjaxError, match=message):
      fvjax.atlas.build(tiny_darknet, kwargs.pop("layers"), images, str(tmp_path / "a"),
                        key=key, **kwargs)
  assert not (tmp_path / "a").exists()


# -- the real browser ---------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,1600"]


@pytest.fixture(scope="module")
def browser():
  webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                  "(pip install -e '.[test]')")
  from selenium.webdriver.chrome.service import Service
  binary = shutil.which("chromium") or shutil.which("chromium-browser")
  driver_path = shutil.which("chromedriver")
  if not binary or not driver_path:
    pytest.skip("no headless Chromium: apt-get install chromium chromium-driver (.ci/run does "
                "as root)")
  options = webdriver.ChromeOptions()
  for flag in CHROMIUM_FLAGS:
    options.add_argument(flag)
  profile = tempfile.mkdtemp(prefix="fvjax_chromium_")
  options.add_argument(f"--user-data-dir={profile}")
  options.binary_location = binary
  options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
  try:
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
  except Exception as err:  # noqa: BLE001 - any failure to start the browser is a skip
    pytest.skip(f"Chromium could not be started: {type(err).__name__}: {str(err)[:200]}")
  yield driver
  driver.quit()
  shutil.rmtree(profile, ignore_errors=True)


def _path(url: str) -> pathlib.Path:
  parsed = urllib.parse.urlparse(url)
  assert parsed.scheme == "file", f"{url} leaves the file system"
  return pathlib.Path(urllib.parse.unquote(parsed.path))


def _errors(driver):
  return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_page_loads_decodes_and_links(built, browser):
  out = built[0]
  pages = sorted(p for p in out.rglob("*.html") if "_build" not in p.parts)
  assert len(pages) == 1 + len(LAYERS) * 3  # index, per layer: its page and 2 unit pages
  browser.get_log("browser")  # drop anything logged before
  for page in pages:
    browser.get(page.as_uri())
    # Lazy images load near the viewport: make them eager, scroll to the end, wait for all.
    browser.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager');"
                           "window.scrollTo(0, document.body.scrollHeight);")
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map(i => i.decode().catch(() => null)))"
        ".then(() => done());")
    images = browser.execute_script(
        "return [...document.images].map(i => [i.src, i.complete, i.naturalWidth]);")
    assert images or page.name == "index.html" and page.parent == out, page
    for src, complete, width in images:
      assert complete and width > 0, f"{src} on {page} did not decode"
      assert _path(src).is_file()
    links = browser.execute_script(
        "return [...document.querySelectorAll('a[href], link[href], script[src]')]"
        ".map(e => e.href || e.src);")
    for link in links:
      if link.startswith("data:"):
        continue
      target = _path(link.split("#")[0])
      assert target.is_file(), f"{page} links to missing {target}"
      assert out in target.parents, f"{page} links outside the atlas: {target}"
    assert _errors(browser) == [], page
  # The index links to every layer page, each layer page to every unit page and back.
  browser.get((out / "index.html").as_uri())
  hrefs = browser.execute_script("return [...document.links].map(a => a.href);")
  for layer in LAYERS:
    assert (out / layer / "index.html").as_uri() in hrefs
    browser.get((out / layer / "index.html").as_uri())
    hrefs_layer = browser.execute_script("return [...document.links].map(a => a.href);")
    assert {(out / layer / f"{u}.html").as_uri() for u in (0, 1)} <= set(hrefs_layer)
    assert (out / "index.html").as_uri() in hrefs_layer


def test_jump_box_goes_to_the_unit(built, browser):
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait

  out = built[0]
  layer_page = out / "leaky_re_lu_2" / "index.html"
  browser.get(layer_page.as_uri())
  box = browser.find_element(By.ID, "jump-unit")
  box.send_keys("7")  # not built: a message, no navigation
  browser.find_element(By.CSS_SELECTOR, "#jump button").click()
  WebDriverWait(browser, 5).until(
      lambda d: "not in this atlas" in d.find_element(By.ID, "jump-message").text)
  assert _path(browser.current_url) == layer_page
  box.clear()
  box.send_keys("1")
  browser.find_element(By.CSS_SELECTOR, "#jump button").click()
  target = out / "leaky_re_lu_2" / "1.html"
  WebDriverWait(browser, 5).until(lambda d: _path(d.current_url) == target)
  assert browser.find_element(By.TAG_NAME, "h1").text == "leaky_re_lu_2:1"
  hrefs = browser.execute_script("return [...document.links].map(a => a.href);")
  assert (out / "leaky_re_lu_1" / "1.html").as_uri() in hrefs  # the same unit, layer before
  from selenium.webdriver.common.keys import Keys
  browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)  # the previous unit
  WebDriverWait(browser, 5).until(
      lambda d: _path(d.current_url) == out / "leaky_re_lu_2" / "0.html")
  assert _errors(browser) == []


def test_cli_dry_run_and_bad_input(built, tmp_path, capsys):
  """``fvjax atlas --dry-run`` counts the units and times a first batch per layer (the jit
  caches are warm from the build above); bad input exits 2 with one line."""
  from PIL import Image

  from fvjax._src.cli import main
  folder = tmp_path / "photos"
  folder.mkdir()
  for i, image in enumerate(np.asarray(built[1].images if hasattr(built[1], "images")
                                       else built[1])[:10]):
    Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i}.png")
  out = tmp_path / "atlas"
  args = ["atlas", "--layers", ",".join(LAYERS), "--units", "0:2", "--steps", "4", "--size",
          "32", "--k", "2", "--batch-units", "1", "--images", str(folder), "--out", str(out),
          "--no-progress"]
  assert main(args + ["--dry-run"]) == 0
  printed = capsys.readouterr().out
  assert "4 units in 4 batches: estimated" in printed
  assert "leaky_re_lu_2: 2 units in 2 batches of 1" in printed
  assert not out.exists()  # a dry run writes nothing
  assert main(args[:2] + ["logits"] + args[3:]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("fvjax atlas: error: layer 'logits' has shape (1000,)")
  assert len(err.splitlines()) == 1
