"""Objective expressions for the command line, e.g.

    "channel:conv2d_8:3 + 100*diversity:conv2d_8 - 0.05*tv"

Terms are ``name:arg:arg...`` atoms combined with ``+``, ``-``, ``*`` by numbers and
parentheses. Atoms (layer names as in ``fvjax layers``):
``channel:L:i``, ``neuron:L:i[:y:x]``, ``layer:L`` (``deepdream:L``), ``logit:i``
(``class_logit:i``), ``prob:i`` (``class_probability:i``), ``diversity:L``, ``alignment:L``,
``interpolate:L1:i:L2:j``, ``l1[:L]``, ``l2[:L]``, ``tv[:L]``, ``blur[:L]``.
"""

from __future__ import annotations

import math
import re

from fvjax._src import objectives as O
from fvjax._src.errors import FvjaxError

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?)|(?P<atom>[A-Za-z_][\w/.:]*)"
                    r"|(?P<op>[-+*()]))")


def _int(value: str, what: str, atom: str) -> int:
  try:
    return int(value)
  except ValueError:
    raise FvjaxError(f"{what} {value!r} in {atom!r} is not an integer") from None


def _atom(text: str) -> O.Objective:
  name, *args = text.split(":")
  spec = _ATOMS.get(name)
  if spec is None:
    raise FvjaxError(f"unknown objective {name!r} in {text!r}; valid: {', '.join(_ATOMS)}")
  arity, build = spec
  if len(args) not in arity:
    raise FvjaxError(f"objective {text!r} takes {' or '.join(str(a) for a in arity)} "
                     f"':'-separated arguments, got {len(args)}")
  return build(text, *args)


_ATOMS = {
    "channel": ((2,), lambda t, l, i: O.channel(l, _int(i, "channel", t))),
    "neuron": ((2, 4), lambda t, l, i, *yx: O.neuron(l, _int(i, "channel", t),
                                                     *[_int(v, "position", t) for v in yx])),
    "layer": ((1,), lambda t, l: O.layer(l)),
    "deepdream": ((1,), lambda t, l: O.layer(l)),
    "logit": ((1,), lambda t, i: O.class_logit(_int(i, "class", t))),
    "class_logit": ((1,), lambda t, i: O.class_logit(_int(i, "class", t))),
    "prob": ((1,), lambda t, i: O.class_probability(_int(i, "class", t))),
    "class_probability": ((1,), lambda t, i: O.class_probability(_int(i, "class", t))),
    "diversity": ((1,), lambda t, l: O.diversity(l)),
    "alignment": ((1,), lambda t, l: O.alignment(l)),
    "interpolate": ((4,), lambda t, l1, i, l2, j: O.channel_interpolate(
        l1, _int(i, "channel", t), l2, _int(j, "channel", t))),
    "l1": ((0, 1), lambda t, *l: O.l1(*l)),
    "l2": ((0, 1), lambda t, *l: O.l2(*l)),
    "tv": ((0, 1), lambda t, *l: O.total_variation(*l)),
    "blur": ((0, 1), lambda t, *l: O.blur_penalty(*l)),
}


def parse_objective(text: str) -> O.Objective:
  """Parse an objective expression (see the module docstring) into an objective."""
  tokens, pos = [], 0
  while pos < len(text.rstrip()):
    match = _TOKEN.match(text, pos)
    if not match or match.end() == pos:
      raise FvjaxError(f"cannot read objective expression {text!r} at position {pos}: "
                       f"{text[pos:pos + 12]!r}")
    kind = match.lastgroup
    tokens.append((kind, match.group(kind)))
    pos = match.end()
  tokens.append(("end", ""))
  position = 0

  def peek():
    return tokens[position]

  def take(expected=None):
    nonlocal position
    kind, value = tokens[position]
    if expected is not None and value != expected:
      raise FvjaxError(f"objective expression {text!r}: expected {expected!r}, got "
                       f"{value or 'the end'!r}")
    position += 1
    return kind, value

  def factor():
    kind, value = take()
    if value == "-":
      return ("neg", factor())
    if value == "(":
      inner = expr()
      take(")")
      return inner
    if kind == "number":
      number = float(value)
      if not math.isfinite(number) or abs(number) > 3.4e38:
        raise FvjaxError(f"objective expression {text!r}: the number {value} is beyond float32 "
                         "(at most 3.4e38)")
      return ("num", number)
    if kind == "atom":
      return ("obj", _atom(value))
    raise FvjaxError(f"objective expression {text!r}: unexpected {value or 'end'!r}")

  def term():
    node = factor()
    while peek()[1] == "*":
      take()
      node = ("mul", node, factor())
    return node

  def expr():
    node = term()
    while peek()[1] in ("+", "-"):
      _, op = take()
      node = (op, node, term())
    return node

  tree = expr()
  if peek()[0] != "end":
    raise FvjaxError(f"objective expression {text!r}: unexpected {peek()[1]!r}")
  value = _evaluate(tree, text)
  if not isinstance(value, O.Objective):
    raise FvjaxError(f"objective expression {text!r} has no objective in it")
  return value


def _evaluate(node, text):
  kind = node[0]
  if kind in ("num", "obj"):
    return node[1]
  if kind == "neg":
    return -_evaluate(node[1], text)
  left, right = _evaluate(node[1], text), _evaluate(node[2], text)
  if kind == "mul":  # number * number, number * objective or objective * objective
    return left * right
  if isinstance(left, O.Objective) != isinstance(right, O.Objective):
    raise FvjaxError(f"objective expression {text!r}: cannot add a number to an objective")
  return left + right if kind == "+" else left - right
