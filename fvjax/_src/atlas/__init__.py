"""`fvjax atlas`: a static, browsable site of every unit of some layers (see `build`)."""
