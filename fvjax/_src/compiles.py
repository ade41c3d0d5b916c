"""Counting XLA compilations with JAX's own compile logging (no counters in traced code)."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Iterator

import jax

_COMPILING = re.compile(r"Compiling (\S+)")


class CompileLog(logging.Handler):
  """The names of the programs JAX compiled (``jit(_run_all)``, ...) while it was active."""

  def __init__(self):
    super().__init__(level=logging.DEBUG)
    self.names: list[str] = []
    self.messages: list[str] = []

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    self.messages.append(message)
    match = _COMPILING.match(message)
    if match:
      self.names.append(match.group(1))

  def count(self, name: str = "") -> int:
    """How many compilations had ``name`` in their program name (all of them for ``""``)."""
    return sum(name in n for n in self.names)


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileLog]:
  """``with fvjax.count_compiles() as log: ...; log.count("_run_all")``.

  Turns on ``jax.log_compiles`` inside the block and records JAX's "Compiling ..." messages
  instead of printing them; a program found in JAX's in-memory cache is not compiled and
  not counted.
  """
  log = CompileLog()
  logger = logging.getLogger("jax")
  propagate, level = logger.propagate, logger.level
  logger.addHandler(log)
  logger.propagate = False
  logger.setLevel(logging.DEBUG)
  try:
    with jax.log_compiles(True):
      yield log
  finally:
    logger.removeHandler(log)
    logger.propagate = propagate
    logger.setLevel(level)
