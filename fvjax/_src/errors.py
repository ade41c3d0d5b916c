"""The one exception type fvjax raises for bad input."""


class FvjaxError(ValueError):
  """Bad input to fvjax: the message names the bad value and the valid choices."""
