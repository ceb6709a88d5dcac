import keras
import numpy as np
import tensorflow as tf
from keras_hub.models import T5Preprocessor
from keras_hub.models import T5Tokenizer

# Not exported by keras-hub: its preset loader and the decorator its own
# preprocessors use to run on tf.data and eagerly alike.
from keras_hub.src.utils.preset_utils import get_preset_loader
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_t2t import _arguments
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone


@keras.saving.register_keras_serializable(package="keras_t2t")
class Teacher2TaskPreprocessor(T5Preprocessor):
    """Raw text to `token_ids` and `padding_mask` for a Teacher2Task model.

    A `keras_hub.models.T5Preprocessor` for a Teacher2Task classifier: a
    `keras_hub.models.T5Tokenizer` (from a preset, or from a SentencePiece
    proto, e.g. from `keras_t2t.data.train_sentencepiece`) and a
    `keras_hub.layers.StartEndPacker` that truncates to `sequence_length - 1`
    tokens, appends the end token, pads and returns the padding mask
    (int32). Like every KerasHub preprocessor it takes and returns
    `(x, y, sample_weight)`, passing `y` and `sample_weight` through, and
    runs TensorFlow ops whatever the Keras backend, so it works inside
    `tf.data` (`ds.map(preprocessor)`) and as a `Teacher2TaskClassifier`'s
    `preprocessor`.

    `x` is a dict holding `text_column` (a string tensor `(batch,)` or a
    scalar) and any other inputs, such as `teacher_id`, which pass through;
    or the strings themselves.

    Args:
        tokenizer: a `keras_hub.models.T5Tokenizer`.
        sequence_length: int. The packed length, end token included.
            Defaults to `256`.
        text_column: str. The input key holding the text. Defaults to
            `"text"`.
        add_start_token: bool. Whether to prepend a start token (T5 has
            none). Defaults to `False`.
        add_end_token: bool. Whether to append the end token. Defaults to
            `True`.

    Example:
    ```python
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    preprocessor = keras_t2t.models.Teacher2TaskPreprocessor(tokenizer, 64)
    x, y = preprocessor({"text": ["a fine film", "dull"]}, [[1.0], [0.0]])
    ds = ds.map(preprocessor)  # Datasets of (x, y, sample_weight).

    # The tokenizer of a local KerasHub T5 preset directory.
    preprocessor = keras_t2t.models.Teacher2TaskPreprocessor.from_preset(
        "./my_t5_preset", sequence_length=64
    )
    ```
    """

    backbone_cls = Teacher2TaskBackbone
    tokenizer_cls = T5Tokenizer

    @_arguments.suggests_keywords
    def __init__(
        self,
        tokenizer,
        sequence_length=256,
        text_column="text",
        add_start_token=False,
        add_end_token=True,
        **kwargs,
    ):
        # At least a token and the end token.
        sequence_length = _arguments.integer(
            "sequence_length", sequence_length, 2
        )
        _arguments.boolean("add_start_token", add_start_token)
        _arguments.boolean("add_end_token", add_end_token)
        super().__init__(
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            add_start_token=add_start_token,
            add_end_token=add_end_token,
            **kwargs,
        )
        self.text_column = text_column

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Builds the preprocessor from a KerasHub preset directory.

        A preset saved from a `Teacher2TaskPreprocessor` loads as it was
        saved; a T5 preset (any preset with a `T5Tokenizer`) gives a new
        preprocessor on its tokenizer, with `kwargs` as its arguments.
        """
        return get_preset_loader(preset).load_preprocessor(cls, **kwargs)

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None, sequence_length=None):
        others = {}
        if isinstance(x, dict):
            if self.text_column not in x:
                raise ValueError(
                    f"{type(self).__name__} reads the text from input "
                    f"{self.text_column!r}; received inputs {sorted(x)}."
                )
            others = {k: v for k, v in x.items() if k != self.text_column}
            x = x[self.text_column]
        self._check_text(x)
        token_ids, padding_mask = self.packer(
            self.tokenizer(x),
            sequence_length=sequence_length or self.sequence_length,
            add_start_value=self.add_start_token,
            add_end_value=self.add_end_token,
        )
        x = {
            **others,
            "token_ids": tf.cast(token_ids, tf.int32),
            "padding_mask": tf.cast(padding_mask, tf.int32),
        }
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def _check_text(self, texts):
        """Raises unless `texts` holds strings, naming the text column."""
        if isinstance(texts, tf.RaggedTensor):
            dtype = texts.dtype
        else:
            dtype = getattr(texts, "dtype", None)
        if dtype is None:
            dtype = np.asarray(texts).dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "USO":
            return
        if keras.backend.standardize_dtype(dtype) == "string":
            return
        column = self.text_column
        raise ValueError(
            f"{type(self).__name__} reads text from input {column!r}, which "
            f"holds {keras.backend.standardize_dtype(dtype)} values, not "
            "strings. A column whose texts are all numbers (such as '123') "
            "is read by pandas as numbers: read it as text, e.g. "
            f"`pd.read_csv(path, dtype={{{column!r}: str}})` or "
            f"`frame[{column!r}].astype(str)`, and pass the DataFrame."
        )

    def num_tokens(self, texts):
        """The token count of each text, before truncation."""
        self._check_text(texts)
        texts = tf.reshape(tf.convert_to_tensor(texts), [-1])
        if tf.executing_eagerly():
            # KerasHub tokenizers turn eager results into Python lists or
            # backend tensors; in a `tf.function` they stay (ragged) tensors.
            ids = tf.function(self.tokenizer, reduce_retracing=True)(texts)
        else:
            ids = self.tokenizer(texts)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(
                ids, padding=self.tokenizer.pad_token_id
            )
        return ids.row_lengths()

    def truncated(self, texts):
        """Whether each text is longer than the packed length allows."""
        room = self.sequence_length - int(self.add_end_token)
        room -= int(self.add_start_token)
        return self.num_tokens(texts) > room

    def get_config(self):
        config = super().get_config()
        config["text_column"] = self.text_column
        return config
