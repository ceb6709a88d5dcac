"""keras_t2t: Teacher2Task multi-teacher learning for Keras 3.

The subpackages are imported on first use (`keras_t2t.models`,
`from keras_t2t import data`), so that importing `keras_t2t` (and the
`keras-t2t` command's `--help`) does not load Keras and TensorFlow. Load
`.keras` files with `keras_t2t.models.load_model`, or import
`keras_t2t.models` before `keras.saving.load_model`: that import registers
the classes a file names.
"""

import importlib

from keras_t2t.version import __version__

_SUBMODULES = (
    "callbacks",
    "data",
    "datasets",
    "diagnostics",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
)

__all__ = [
    "TeacherVocabulary",
    "__version__",
    *_SUBMODULES,
]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_t2t.{name}")
    if name == "TeacherVocabulary":
        from keras_t2t.teacher_vocabulary import TeacherVocabulary

        return TeacherVocabulary
    raise AttributeError(f"module 'keras_t2t' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
