from keras_t2t.data.expand import expand
from keras_t2t.data.expand_arrays import expand_arrays
from keras_t2t.data.sources import read_sequences
from keras_t2t.data.sources import read_table
from keras_t2t.data.sources import read_targets
from keras_t2t.data.summary import ExpansionSummary
from keras_t2t.data.summary import summarize
from keras_t2t.data.text import TextPreprocessor
from keras_t2t.data.text import train_sentencepiece
from keras_t2t.data.tfds_builder import save_as_tfds

__all__ = [
    "ExpansionSummary",
    "TextPreprocessor",
    "expand",
    "expand_arrays",
    "read_sequences",
    "read_table",
    "read_targets",
    "save_as_tfds",
    "summarize",
    "train_sentencepiece",
]
