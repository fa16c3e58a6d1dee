"""Models and the registry that names them."""
