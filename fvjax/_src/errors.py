"""The one exception type fvjax raises for bad input."""


class FvjaxError(ValueError):
  """Bad input to fvjax: the message names the bad value and the valid choices."""


def first_line(error: Exception) -> str:
  """The first line of ``error``'s text (JAX errors carry long notes after it)."""
  lines = str(error).strip().splitlines()
  return lines[0] if lines else ""


def without_jax_notes(error: FvjaxError) -> str:
  """An `FvjaxError` raised while tracing, without the notes JAX appends to its text."""
  return str(error).split("\n--------------------\n", 1)[0]
