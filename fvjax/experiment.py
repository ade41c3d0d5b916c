"""Helpers for experiment scripts: `jsonable`/`write_json` (NumPy/JAX values to JSON),
`log` (timestamped progress lines) and `shared_photos_dir` / `require_photos` (the shared ImageNet photos);
see `fvjax._src.experiment`."""

from fvjax._src.experiment import jsonable, log, require_photos, shared_photos_dir, write_json

__all__ = ["jsonable", "write_json", "log", "shared_photos_dir", "require_photos"]
