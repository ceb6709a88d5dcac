"""Markers shared by the tests."""

import keras
import pytest

# End-to-end runs of the recipes and of the command line on further table
# shapes: programs over the classifier, whose every path is tested on each
# backend on its own. They run once, on TensorFlow (the backend the
# README's tables are measured on), to keep the suite within CI's budget;
# the command line's main path (text: fit, predict, report, bad input)
# runs on every backend.
tensorflow_only_end_to_end = pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="end to end on TensorFlow only (tests/markers.py says why)",
)
