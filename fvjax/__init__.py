from fvjax._src.model import Model
