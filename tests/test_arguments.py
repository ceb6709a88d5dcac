"""Every public callable checks its arguments where they enter.

A property over the public surface: for each public constructor and
function, an argument is drawn from a mix of wrong types, out-of-range
numbers, NaN and infinities, misspelled choices and valid values
(hypothesis, derandomized). A value outside the argument's domain (the
table below, written from the docstrings, not from the code) must give a
`ValueError` or `TypeError` whose message names the argument; a value
inside it must give a result, or an error naming one of the callable's
arguments (a combination the docstring refuses). Never a framework
traceback, and never silence. Misspelled keyword arguments are refused
with the closest valid name.
"""

import functools
import math
import numbers

import keras_hub
import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_t2t
from keras_t2t import _arguments
from tests.test_case import SMALLEST
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


class Domain:
    """The values an argument accepts, as its docstring says."""

    def __init__(
        self,
        kind,
        low=None,
        high=None,
        *,
        above=None,
        below=None,
        none=False,
        words=(),
    ):
        self.kind, self.low, self.high = kind, low, high
        self.above, self.below, self.none = above, below, none
        self.words = words  # Words allowed beside the numbers.

    def __contains__(self, value):
        if value is None:
            return self.none
        if isinstance(value, str) and value in self.words:
            return True
        if isinstance(value, bool):
            return self.kind == "bool"
        if self.kind == "bool":
            return False
        if self.kind == "choice":
            return isinstance(value, str) and value in self.low
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        return (
            (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )


def ints(low=None, high=None, none=False):
    return Domain("int", low, high, none=none)


def floats(low=None, high=None, above=None, below=None, none=False):
    return Domain("float", low, high, above=above, below=below, none=none)


def choice(*names, none=False):
    return Domain("choice", names, none=none)


BOOL = Domain("bool")
COUNT = ints(1)
SHARE = floats(0.0, 1.0)
OPEN_SHARE = floats(above=0.0, below=1.0)
DROPOUT = floats(0.0, below=1.0)
LAYOUTS = choice("sparse", "packed", "per_example")
TOKENS = choice("free", "mixture")

VOCABULARY = keras_t2t.TeacherVocabulary(["a", "b"])
TEXTS = [f"a short text number {i} about films" for i in range(40)]


@functools.cache
def tokenizer():
    proto = keras_t2t.data.train_sentencepiece(TEXTS, vocabulary_size=40)
    return keras_hub.models.T5Tokenizer(proto=proto)


def table(rows=8):
    rng = np.random.default_rng(0)
    return {
        "x": rng.random((rows, 3)).astype("float32"),
        "label": np.where(np.arange(rows) % 2, np.nan, rng.random(rows) > 0.5),
        "a": rng.random(rows).astype("float32"),
        "b": rng.random(rows).astype("float32"),
    }


def arrays(rows=8):
    rng = np.random.default_rng(0)
    return (
        {"features": rng.random((rows, 4, 8)).astype("float32")},
        np.where(np.arange(rows) % 2, np.nan, 1.0).astype("float32"),
        rng.random((rows, 3)).astype("float32"),
    )


def fit_arrays(classifier, **kwargs):
    x = {
        "teacher_id": np.zeros(8, "int32"),
        "features": np.random.rand(8, 4, 8).astype("float32"),
    }
    return classifier.fit(x, np.random.rand(8, 1), verbose=0, **kwargs)


def predict_arrays(classifier, **kwargs):
    x = {"features": np.random.rand(4, 4, 8).astype("float32")}
    return classifier.predict(x, verbose=0, **kwargs)


TASK_LAYER = (
    dict(num_teachers=2, hidden_dim=4),
    dict(
        num_teachers=ints(1),
        hidden_dim=ints(1),
        ground_truth_token=TOKENS,
        teacher_shrinkage=floats(0.0),
    ),
)

# callable, its baseline keyword arguments, the domain of each argument
# drawn. Calls are cheap (tiny configs, 8 rows).
SURFACE = {
    "TeacherVocabulary": (
        keras_t2t.TeacherVocabulary,
        dict(teachers=["a", "b"]),
        {},
    ),
    "BackupAndRestore": (
        keras_t2t.callbacks.BackupAndRestore,
        dict(backup_dir="BACKUP"),
        dict(
            save_freq=Domain("int", 1, words=("epoch",)),
            double_checkpoint=BOOL,
            delete_checkpoint=BOOL,
        ),
    ),
    "expand": (
        keras_t2t.data.expand,
        dict(
            source=None,
            vocabulary=VOCABULARY,
            inputs="x",
            ground_truth="label",
            task_layout="per_example",
        ),
        dict(
            ground_truth_weight=floats(0.0),
            teacher_weight=floats(0.0),
            task_layout=LAYOUTS,
            shuffle_buffer=ints(1, none=True),
            seed=ints(0, none=True),
            batch_size=ints(1, none=True),
            drop_remainder=BOOL,
            repeat=BOOL,
            balance=floats(above=0.0, below=1.0, none=True),
        ),
    ),
    "expand_arrays": (
        keras_t2t.data.expand_arrays,
        dict(
            zip(("inputs", "labels", "teacher_scores"), arrays(), strict=True)
        ),
        dict(ground_truth_weight=floats(0.0), task_layout=LAYOUTS),
    ),
    "make_synthetic_teachers": (
        keras_t2t.datasets.make_synthetic_teachers,
        dict(num_rows=8, feature_dim=2),
        dict(
            **dict.fromkeys(
                ["num_rows", "num_teachers", "num_labels", "sequence_length"],
                COUNT,
            ),
            feature_dim=ints(1, none=True),
            ground_truth_fraction=SHARE,
            teacher_coverage=SHARE,
            seed=ints(0, none=True),
        ),
    ),
    "teacher_report": (
        keras_t2t.diagnostics.teacher_report,
        dict(
            source=None, vocabulary=VOCABULARY, inputs="x", ground_truth="label"
        ),
        dict(
            threshold=OPEN_SHARE,
            num_bins=ints(1),
            min_labelled=ints(1),
            summarize_above=ints(0),
            top_k=ints(1),
            min_overlap=ints(1),
            shrinkage=floats(0.0),
            block_size=ints(1),
            batch_size=ints(1, none=True),
        ),
    ),
    "InputMasking": (
        keras_t2t.layers.InputMasking,
        {},
        dict(rate=OPEN_SHARE, seed=ints(0, none=True)),
    ),
    # The task layers take the same arguments.
    "TaskTokens": (keras_t2t.layers.TaskTokens, *TASK_LAYER),
    "TeacherEmbedding": (keras_t2t.layers.TeacherEmbedding, *TASK_LAYER),
    "TeacherShrinkage": (
        keras_t2t.layers.TeacherShrinkage,
        {},
        dict(strength=floats(0.0)),
    ),
    "MaskedMultiTaskLoss": (
        keras_t2t.losses.MaskedMultiTaskLoss,
        {},
        dict(
            epsilon=floats(above=0.0),
            normalize=choice("entries", "tasks"),
        ),
    ),
    "PRAUC": (
        keras_t2t.metrics.PRAUC,
        {},
        dict(
            num_labels=ints(1),
            num_thresholds=ints(2, 100_000),
            average=choice("macro", none=True),
        ),
    ),
    "pr_auc_score": (
        keras_t2t.metrics.pr_auc_score,
        dict(labels=[1.0, 0.0, 1.0], scores=[0.9, 0.2, 0.4]),
        dict(average=choice("macro", none=True)),
    ),
    "Teacher2TaskBackbone": (
        keras_t2t.models.Teacher2TaskBackbone,
        dict(num_teachers=2, feature_dim=3, **SMALLEST),
        dict(
            **dict.fromkeys(
                "num_teachers num_layers num_heads hidden_dim intermediate_dim "
                "feature_dim".split(),
                COUNT,
            ),
            key_value_dim=ints(1, none=True),
            dropout=DROPOUT,
            use_gated_activation=BOOL,
            layer_norm_epsilon=floats(above=0.0),
            task_layout=LAYOUTS,
            embedding_stddev=floats(above=0.0),
            max_sequence_length=ints(1, none=True),
            ground_truth_token=TOKENS,
            teacher_shrinkage=floats(0.0),
        ),
    ),
    "Teacher2TaskClassifier": (
        lambda **kwargs: tiny_classifier(tiny_backbone(**SMALLEST), **kwargs),
        {},
        dict(num_labels=ints(1), dropout=DROPOUT),
    ),
    "Teacher2TaskPretrainer": (
        lambda **kwargs: keras_t2t.models.Teacher2TaskPretrainer(
            tiny_backbone(**SMALLEST), **kwargs
        ),
        {},
        dict(
            mask_rate=OPEN_SHARE,
            max_predictions=ints(1, none=True),
            seed=ints(0, none=True),
        ),
    ),
    "Teacher2TaskPreprocessor": (
        lambda **kwargs: keras_t2t.models.Teacher2TaskPreprocessor(
            tokenizer(), **kwargs
        ),
        {},
        dict(
            sequence_length=ints(2),
            add_start_token=BOOL,
            add_end_token=BOOL,
        ),
    ),
    "train_sentencepiece": (
        keras_t2t.data.train_sentencepiece,
        dict(texts=TEXTS, vocabulary_size=40),
        dict(
            vocabulary_size=ints(4),
            model_type=choice("unigram", "bpe"),
        ),
    ),
    "BestOnValidation": (
        keras_t2t.callbacks.BestOnValidation,
        dict(validation_data=({"features": np.zeros((2, 4, 8))}, [0, 1])),
        dict(restore_best=BOOL, verbose=ints(0, 2)),
    ),
    "Teacher2TaskClassifier.fit": (
        lambda **kwargs: fit_arrays(
            tiny_classifier(tiny_backbone(**SMALLEST)), **kwargs
        ),
        {},
        dict(
            batch_size=ints(1, none=True),
            epochs=ints(1),
            validation_split=floats(0.0, below=1.0, none=True),
            shuffle=BOOL,
        ),
    ),
    "Teacher2TaskClassifier.predict": (
        lambda **kwargs: predict_arrays(
            tiny_classifier(tiny_backbone(**SMALLEST)), **kwargs
        ),
        {},
        dict(batch_size=ints(1, none=True)),
    ),
}

# Tables are made per call (an expansion reads its source once).
TABLE_SOURCES = {"expand", "teacher_report"}

VALUES = st.one_of(
    st.integers(-2, 5),
    st.sampled_from([0.0, 0.5, -0.5, 1.5, math.nan, math.inf, -math.inf]),
    st.sampled_from(["", "3", "x", "epoch", "sparse", "macro", "mixure"]),
    st.none(),
    st.booleans(),
    st.just([1]),
    st.just(np.float32(0.25)),
)


def call(name, **overrides):
    target, baseline, _ = SURFACE[name]
    kwargs = dict(baseline, **overrides)
    if name in TABLE_SOURCES:
        kwargs["source"] = table()
    if name == "BackupAndRestore":
        import tempfile

        kwargs["backup_dir"] = tempfile.mkdtemp()
    return target(**kwargs)


def names_an_argument(message, name):
    _, baseline, domains = SURFACE[name]
    return any(f"`{arg}`" in message or arg in message for arg in domains)


class ArgumentsTest(TestCase):
    def check(self, name, argument, value):
        domain = SURFACE[name][2][argument]
        try:
            call(name, **{argument: value})
        except (ValueError, TypeError) as error:
            message = str(error)
            if value in domain:
                self.assertTrue(
                    names_an_argument(message, name),
                    f"{name}({argument}={value!r}) is in the documented "
                    f"domain and raised an error naming no argument: "
                    f"{message}",
                )
            else:
                self.assertIn(
                    argument,
                    message,
                    f"{name}({argument}={value!r}) raised an error that "
                    f"does not name `{argument}`: {message}",
                )
            return
        self.assertIn(
            value,
            domain,
            f"{name}({argument}={value!r}) is outside the documented domain "
            "and was accepted without a word.",
        )


def _property_test(name):
    arguments = sorted(SURFACE[name][2])

    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(argument=st.sampled_from(arguments), value=VALUES)
    def test(self, argument, value):
        self.check(name, argument, value)

    return test


for _name in SURFACE:
    if SURFACE[_name][2]:
        setattr(
            ArgumentsTest,
            f"test_{_name.replace('.', '_')}",
            _property_test(_name),
        )


class KeywordsTest(TestCase):
    def test_a_misspelled_keyword_names_the_closest(self):
        for name, misspelled, closest in [
            ("expand", "batchsize", "batch_size"),
            ("teacher_report", "min_labeled", "min_labelled"),
            ("Teacher2TaskBackbone", "num_layer", "num_layers"),
            ("TaskTokens", "hiden_dim", "hidden_dim"),
            ("make_synthetic_teachers", "num_teacher", "num_teachers"),
        ]:
            with self.subTest(name=name):
                with self.assertRaisesRegex(TypeError, misspelled) as caught:
                    call(name, **{misspelled: 1})
                self.assertIn(closest, str(caught.exception))

    def test_the_checks_name_the_value_as_written(self):
        with self.assertRaises(ValueError) as caught:
            _arguments.integer("batch_size", 0, 1)
        self.assertEqual(
            str(caught.exception),
            "`batch_size` must be an integer >= 1. Received: batch_size=0",
        )
        with self.assertRaisesRegex(ValueError, "did you mean 'sparse'"):
            _arguments.choice("task_layout", "spares", ["sparse", "packed"])
        with self.assertRaisesRegex(TypeError, "did you mean 'seed'"):
            _arguments.keywords("expand()", {"sed": 0}, ["seed", "repeat"])
