"""Which optional extra of keras-t2t installs a missing module."""

# The top-level module -> the extra (`pip install "keras-t2t[EXTRA]"`).
EXTRAS = {
    "pandas": "data",
    "pyarrow": "data",
    "sentencepiece": "data",
    "tensorflow_datasets": "data",
    "importlib_resources": "data",
    "matplotlib": "diagnostics",
    "jax": "jax",
    "torch": "torch",
}


def missing_module_message(error):
    """A one-line message for a `ModuleNotFoundError`, naming the extra
    that installs the module; `None` for a module no extra provides."""
    module = (getattr(error, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    return (
        f"this needs the optional package `{module}`, which is not "
        f'installed: pip install "keras-t2t[{extra}]" (or '
        '"keras-t2t[all]").'
    )
