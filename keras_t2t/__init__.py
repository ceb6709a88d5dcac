"""keras_t2t: Teacher2Task multi-teacher learning for Keras 3."""

from keras_t2t import callbacks
from keras_t2t import data
from keras_t2t import datasets
from keras_t2t import diagnostics
from keras_t2t import export
from keras_t2t import layers
from keras_t2t import losses
from keras_t2t import metrics
from keras_t2t import models
from keras_t2t.teacher_vocabulary import TeacherVocabulary
from keras_t2t.version import __version__

__all__ = [
    "TeacherVocabulary",
    "__version__",
    "callbacks",
    "data",
    "datasets",
    "diagnostics",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
]
