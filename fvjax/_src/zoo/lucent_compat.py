"""Running torch-lucent (the reference for `InceptionV1`) beside a current, CPU-only torch.

torch-lucent imports torchvision, whose registry wheels do not import against the CPU-only
torch build; it only uses ``torchvision.transforms.Normalize`` and the ``torchvision.models``
namespace. Used by tests/test_zoo_torch.py and benchmarks/vs_lucent.py (install notes in
benchmarks/README.md); needs torch.
"""

from __future__ import annotations

import sys
import types


def install_torchvision_stand_in() -> str:
  """Put a stand-in for torchvision in ``sys.modules`` when the real one does not import.

  Returns what torch-lucent will see: ``"torchvision <version>"`` or ``"stand-in"``.
  """
  try:
    import torchvision  # pylint: disable=import-outside-toplevel
    return "torchvision " + torchvision.__version__
  except Exception:  # not installed, or a wheel built for another torch
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
      del sys.modules[name]
  import torch  # pylint: disable=import-outside-toplevel
  package = types.ModuleType("torchvision")
  package.__path__ = []
  models = types.ModuleType("torchvision.models")
  models.__all__ = []
  transforms = types.ModuleType("torchvision.transforms")

  class Normalize:
    def __init__(self, mean, std):
      self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __call__(self, t):
      return (t - self.mean[:, None, None]) / self.std[:, None, None]

  transforms.Normalize = Normalize
  package.models, package.transforms = models, transforms
  sys.modules.update({"torchvision": package, "torchvision.models": models,
                      "torchvision.transforms": transforms})
  return "stand-in (fvjax._src.zoo.lucent_compat)"
