"""The atlas's HTML: plain pages with relative links, one stylesheet and one small script.

``index.html`` (the model, its layers, how the atlas was made), ``<layer>/index.html`` (a
lazy-loaded grid of every unit's visualization and a jump box) and ``<layer>/<unit>.html``
(everything about one unit). Nothing is fetched from the network: the pages open from the file
system in any current browser. The activation histogram is inline SVG.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
from importlib import resources

import numpy as np

ICON = '<link rel="icon" href="data:,">'  # no favicon request (a console error on file://)


def _e(value) -> str:
  return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 3) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "n/a"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.{digits}g}"
  return _e(value)


def _page(title: str, root: str, body: str) -> str:
  return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          f"<title>{_e(title)}</title>\n{ICON}\n"
          f"<link rel=\"stylesheet\" href=\"{root}atlas.css\">\n"
          f"<script src=\"{root}atlas.js\" defer></script>\n</head>\n<body>\n{body}\n"
          "</body>\n</html>\n")


def _write(path: str, text: str) -> None:
  partial = path + ".partial"
  with open(partial, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(partial, path)


def histogram_svg(values, marker: float, *, width: int = 480, height: int = 150,
                  bins: int = 40) -> str:
  """Inline SVG: a histogram of ``values`` (the unit's spatial-mean activation on each natural
  image) with a red line at ``marker`` (the visualization's activation)."""
  values = np.asarray(values, np.float64)
  lo = float(min(values.min(), marker))
  hi = float(max(values.max(), marker))
  if hi <= lo:
    hi = lo + 1.0
  counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
  left, right, top, bottom = 8, width - 8, 8, height - 28
  scale_x = (right - left) / (hi - lo)
  tallest = max(int(counts.max()), 1)
  parts = [f'<svg class="hist" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="activation histogram">']
  for c, a, b in zip(counts, edges[:-1], edges[1:]):
    if c == 0:
      continue
    h = (bottom - top) * c / tallest
    x = left + (a - lo) * scale_x
    w = max((b - a) * scale_x - 1, 1)
    parts.append(f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                 f'fill="#7a8a9a"><title>{c} images in [{a:.3g}, {b:.3g})</title></rect>')
  mx = left + (marker - lo) * scale_x
  parts.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>')
  parts.append(f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{bottom}" stroke="#d0021b" '
               'stroke-width="2"/>')
  anchor = "end" if mx > width / 2 else "start"
  shift = -4 if anchor == "end" else 4
  parts.append(f'<text x="{mx + shift:.1f}" y="{top + 12}" text-anchor="{anchor}" '
               f'fill="#d0021b">visualization {marker:.3g}</text>')
  parts.append(f'<text x="{left}" y="{height - 8}">{lo:.3g}</text>')
  parts.append(f'<text x="{right}" y="{height - 8}" text-anchor="end">{hi:.3g}</text>')
  parts.append(f'<text x="{width / 2:.0f}" y="{height - 8}" text-anchor="middle">'
               f'mean activation ({len(values)} natural images; tallest bar {tallest})</text>')
  parts.append("</svg>")
  return "".join(parts)


def _nav(links) -> str:
  return '<nav class="crumbs">' + " &rsaquo; ".join(links) + "</nav>"


def _jump(units, prefix: str = "") -> str:
  shown = f"{units[0]}..{units[-1]}" if units == list(range(units[0], units[-1] + 1)) else \
      ", ".join(str(u) for u in units[:8]) + (" ..." if len(units) > 8 else "")
  return (f'<form id="jump" class="jump" novalidate data-prefix="{_e(prefix)}" '
          f'data-units="{",".join(str(u) for u in units)}" data-range="{_e(shown)}">'
          '<label for="jump-unit">Go to unit</label> '
          f'<input id="jump-unit" name="unit" type="number" min="{units[0]}" max="{units[-1]}" '
          f'placeholder="{units[0]}"> <button type="submit">Go</button> '
          '<span id="jump-message" class="message" role="status"></span></form>')


def write_index(out, manifest) -> None:
  rows = []
  for layer in manifest["layers"]:
    shape = "x".join(str(s) for s in layer["shape"])
    units = layer["units"]
    rows.append(f'<tr><td><a href="{_e(layer["folder"])}/index.html">{_e(layer["layer"])}</a>'
                f'</td><td>{shape}</td><td>{layer["channels"]}</td><td>{len(units)}</td>'
                f'<td>{layer["batches"]} x {layer["batch size"]}</td></tr>')
  settings = "".join(f"<tr><th>{_e(k)}</th><td>{_e(json.dumps(v) if not isinstance(v, str) else v)}"
                     "</td></tr>" for k, v in manifest["settings"].items())
  versions = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                     for k, v in manifest["versions"].items())
  count = len(manifest["layers"])
  body = (f'<header><h1>{_e(manifest["model"])} atlas</h1><p>{manifest["units"]} units of '
          f'{count} layer{"s" * (count != 1)}; input {manifest["input"][0]}x{manifest["input"][1]}'
          'x3. Each unit has a page with its feature visualization, a '
          'diversity batch, snapshots, dataset examples, its activation distribution on the '
          'natural images and its trust report.</p></header>'
          '<main><h2>Layers</h2><table class="layers"><thead><tr><th>layer</th><th>shape</th>'
          '<th>channels</th><th>units in atlas</th><th>batches</th></tr></thead><tbody>'
          + "".join(rows) + '</tbody></table>'
          '<h2>How it was made</h2><pre class="command" id="command">'
          f'{_e(manifest["command"])}</pre><p>Built {_e(manifest["date"])}; '
          f'{manifest["computed batches"]} batches computed and {manifest["loaded batches"]} '
          f'resumed in this run ({manifest["seconds"]} s).</p>'
          f'<h3>Settings</h3><table class="kv">{settings}</table>'
          f'<h3>Versions</h3><table class="kv">{versions}</table></main>'
          '<footer>Made with fvjax (fvjax atlas).</footer>')
  _write(os.path.join(out, "index.html"), _page(f"{manifest['model']} atlas", "", body))


def write_layer(out, manifest, position, info, fmt) -> None:
  layers = manifest["layers"]
  layer = layers[position]
  units = layer["units"]
  tiles = []
  for unit in units:
    flagged = info[unit]["trust"]["flagged"]
    tiles.append(f'<a class="tile{" flagged" if flagged else ""}" href="{unit}.html" '
                 f'id="u{unit}"><img loading="lazy" src="img/{unit}.{fmt}" width="96" '
                 f'height="96" alt="{_e(layer["layer"])} unit {unit}"><span>{unit}'
                 f'{" &#9888;" if flagged else ""}</span></a>')
  neighbours = _prev_next(position, len(layers),
                          lambda i: f"../{layers[i]['folder']}/index.html",
                          lambda i: layers[i]["layer"])
  flagged = sum(info[u]["trust"]["flagged"] for u in units)
  body = (_nav(['<a href="../index.html">atlas</a>', _e(layer["layer"])])
          + f'<header><h1>{_e(layer["layer"])}</h1><p>shape '
          f'{"x".join(str(s) for s in layer["shape"])}; {len(units)} of {layer["channels"]} '
          f'units; {flagged} flagged by the trust report (&#9888;).</p>'
          f'<p class="neighbours">{" ".join(neighbours)}</p>{_jump(units)}</header>'
          f'<main class="grid">{"".join(tiles)}</main>')
  _write(os.path.join(out, layer["folder"], "index.html"),
         _page(f"{layer['layer']} - {manifest['model']} atlas", "../", body))


def _prev_next(index: int, count: int, href, label) -> list[str]:
  """The ``rel="prev"`` / ``rel="next"`` links (the arrow keys follow them) to the neighbours
  of item ``index`` of ``count``; ``href(i)`` and ``label(i)`` give neighbour ``i``'s."""
  links = []
  if index > 0:
    links.append(f'<a rel="prev" href="{_e(href(index - 1))}">&larr; {_e(label(index - 1))}</a>')
  if index + 1 < count:
    links.append(f'<a rel="next" href="{_e(href(index + 1))}">{_e(label(index + 1))} &rarr;</a>')
  return links


def _figure(src, caption, cls="", width=None) -> str:
  size = f' width="{width}" height="{width}"' if width else ""
  return (f'<figure class="{cls}"><img src="{_e(src)}"{size} alt="{_e(caption)}">'
          f'<figcaption>{caption}</figcaption></figure>')


def _trust_table(trust) -> str:
  rows = [("visualization activation", trust["visualization_activation"]),
          ("natural max / p99 / median", " / ".join(_fmt(trust[k]) for k in
                                                     ("natural_max", "natural_p99",
                                                      "natural_median"))),
          ("drive (natural ranges above the median)", trust["drive"]),
          ("fires on (fraction of natural images)", trust["fire_fraction"]),
          (f"linear read-out from {trust['readout_layer'] or '-'}: error (of range)",
           trust["readout_error"]),
          ("read-out exact", trust["readout_exact"]),
          ("unexplained activation (natural ranges)", trust["unexplained"]),
          ("path similarity (mean of the deepest layers)", trust["path_similarity_mean"])]
  body = "".join(f"<tr><th>{_e(k)}</th><td>{v if isinstance(v, str) else _fmt(v)}</td></tr>"
                 for k, v in rows)
  paths = "".join(f"<tr><th>{_e(l)}</th><td>{_fmt(v, 2)}</td></tr>"
                  for l, v in trust["path_similarity"].items())
  verdict = ('<p class="verdict flagged">Flagged: ' + "; ".join(_e(r) for r in trust["reasons"])
             + ".</p>" if trust["flagged"] else
             '<p class="verdict ok">Not flagged by the trust report.</p>')
  return (f'{verdict}<table class="kv">{body}</table><details><summary>path similarity per '
          f'layer</summary><table class="kv">{paths}</table></details>')


def write_unit(out, manifest, position, unit_index, info, snapshots, diversity, fmt) -> None:
  layers = manifest["layers"]
  layer = layers[position]
  units = layer["units"]
  unit = units[unit_index]
  data = info[unit]
  trust = data["trust"]
  name = layer["layer"]
  steps = manifest["settings"]["steps"]
  links = _prev_next(unit_index, len(units), lambda i: f"{units[i]}.html",
                     lambda i: f"unit {units[i]}")
  for other in (position - 1, position + 1):
    if 0 <= other < len(layers):
      o = layers[other]
      target = (f"../{o['folder']}/{unit}.html" if unit in o["units"]
                else f"../{o['folder']}/index.html")
      label = f"{o['layer']}:{unit}" if unit in o["units"] else o["layer"]
      links.append(f'<a class="layer-link" href="{_e(target)}">{_e(label)}</a>')
  diversity_row = "".join(_figure(f"img/{unit}_d{d}.{fmt}", f"#{d}", "small", 128)
                          for d in range(1, diversity + 1))
  snapshot_row = "".join(_figure(f"img/{unit}_s{s}.{fmt}", f"step {s}", "small", 128)
                         for s in snapshots)
  snapshot_row += _figure(f"img/{unit}.{fmt}", f"step {steps}", "small", 128)

  def examples(which):
    return "".join(
        f'<figure class="example"><img src="{_e(ex["file"])}" width="96" height="96" '
        f'alt="{_e(ex["name"])}" title="{_e(ex["name"])} box {ex["box"]}">'
        f'<figcaption>{ex["score"]:.3g}</figcaption></figure>'
        for ex in data["examples"][which])

  body = (_nav(['<a href="../index.html">atlas</a>',
                f'<a href="index.html">{_e(name)}</a>', f"unit {unit}"])
          + f'<header><h1>{_e(name)}:{unit}</h1><p class="neighbours">{" ".join(links)}</p>'
          f'{_jump(units)}</header><main class="unit">'
          '<section class="hero">'
          + _figure(f"img/{unit}.{fmt}", f"channel visualization: {steps} steps, activation "
                    f"{_fmt(trust['visualization_activation'])}", "main", 256)
          + '<div class="side"><h2>Trust report</h2>' + _trust_table(trust)
          + '<h2>Activation on natural images</h2>'
          + histogram_svg(data["natural"], trust["visualization_activation"])
          + '</div></section>'
          + (f'<section><h2>Diversity batch</h2><div class="row">{diversity_row}</div></section>'
             if diversity else "")
          + f'<section><h2>Snapshots</h2><div class="row">{snapshot_row}</div></section>'
          f'<section><h2>Dataset examples</h2><div class="examples"><div><h3>Top '
          f'{len(data["examples"]["top"])}</h3><div class="row">{examples("top")}</div></div>'
          f'<div><h3>Bottom {len(data["examples"]["bottom"])}</h3><div class="row">'
          f'{examples("bottom")}</div></div></div>'
          '<p class="note">Crops around the peak activation; captions: the unit\'s mean '
          'activation on the whole image (hover for the file name).</p></section>'
          + "</main>")
  _write(os.path.join(out, layer["folder"], f"{unit}.html"),
         _page(f"{name}:{unit} - {manifest['model']} atlas", "../", body))


def copy_static(out: str) -> None:
  """The site's stylesheet and script into ``out``."""
  static = resources.files("fvjax._src.atlas") / "static"
  for name in ("atlas.css", "atlas.js"):
    with resources.as_file(static / name) as source:
      shutil.copyfile(source, os.path.join(out, name))


def write_site(out, manifest, units_info, snapshots, diversity, fmt) -> None:
  """Every page of the atlas, from the manifest and each unit's stored results."""
  copy_static(out)
  write_index(out, manifest)
  for position, layer in enumerate(manifest["layers"]):
    info = units_info[layer["layer"]]
    write_layer(out, manifest, position, info, fmt)
    for unit_index in range(len(layer["units"])):
      write_unit(out, manifest, position, unit_index, info, snapshots, diversity, fmt)
