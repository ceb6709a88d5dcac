import io

import keras
import tensorflow as tf
from keras_hub.models import T5Tokenizer


def train_sentencepiece(
    texts, vocabulary_size=8000, model_type="unigram", **kwargs
):
    """Trains a SentencePiece model on your own texts, offline.

    The special ids follow T5 (`<pad>` 0, `</s>` 1, `<unk>` 2, no `<s>`), so
    the result loads into `keras_hub.models.T5Tokenizer(proto=...)`. On a
    small corpus the vocabulary may come out smaller than asked for.

    Args:
        texts: iterable of str. The training corpus (e.g. the train split).
        vocabulary_size: int. The vocabulary size to aim for. Defaults to
            8000.
        model_type: str. `"unigram"` or `"bpe"`. Defaults to `"unigram"`.
        **kwargs: further `sentencepiece.SentencePieceTrainer` options.

    Returns:
        The serialized model proto, as bytes.

    Example:
    ```python
    proto = keras_t2t.data.train_sentencepiece(train_texts, 8000)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    ```
    """
    import sentencepiece

    texts = [str(text) for text in texts]
    if not texts:
        raise ValueError("`texts` is empty: nothing to train a tokenizer on.")
    model = io.BytesIO()
    options = {
        "vocab_size": vocabulary_size,
        "model_type": model_type,
        "pad_id": 0,
        "eos_id": 1,
        "unk_id": 2,
        "bos_id": -1,
        "hard_vocab_limit": False,
        "minloglevel": 2,
    }
    options.update(kwargs)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, **options
    )
    return model.getvalue()


@keras.saving.register_keras_serializable(package="keras_t2t")
class TextPreprocessor(keras.layers.Layer):
    """Tokenizes raw text into `token_ids` and `padding_mask`, in `tf.data`.

    Runs a `keras_hub.models.T5Tokenizer` (from a preset directory, or from
    a SentencePiece proto, e.g. from `train_sentencepiece`), truncates to
    `sequence_length - 1` tokens, appends the end token and pads. It always
    runs TensorFlow ops, so it works inside `tf.data` and as a
    `Teacher2TaskClassifier`'s `preprocessor` whatever the Keras backend.

    Args:
        tokenizer: a `keras_hub.models.T5Tokenizer`.
        sequence_length: int. The packed length, end token included.
        text_column: str. The input key holding the text. Defaults to
            `"text"`.

    Call arguments:
        x: a dict with `text_column` (a string tensor `(batch,)` or a
            scalar), or the string tensor itself.

    Returns:
        A dict with `token_ids` and `padding_mask` (int32,
        `(batch, sequence_length)`), plus any other keys of `x`.

    Example:
    ```python
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    preprocessor = keras_t2t.data.TextPreprocessor(tokenizer, 64)
    preprocessor({"text": tf.constant(["a fine film", "dull"])})
    ```
    """

    def __init__(
        self, tokenizer, sequence_length, text_column="text", **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if sequence_length < 2:
            raise ValueError(
                "`sequence_length` must be >= 2 (a token and the end "
                f"token). Received: {sequence_length}"
            )
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.text_column = text_column
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_preset(cls, preset, sequence_length, **kwargs):
        """Loads the T5 tokenizer of a KerasHub preset directory."""
        tokenizer = T5Tokenizer.from_preset(preset)
        return cls(tokenizer, sequence_length, **kwargs)

    def _tokenize(self, texts):
        texts = tf.convert_to_tensor(texts)
        scalar = texts.shape.rank == 0
        texts = tf.reshape(texts, [-1])
        if tf.executing_eagerly():
            # KerasHub tokenizers turn eager results into Python lists; in a
            # `tf.function` they stay (ragged) tensors, as in `tf.data`.
            ids = tf.function(self.tokenizer, reduce_retracing=True)(texts)
        else:
            ids = self.tokenizer(texts)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(
                ids, padding=self.tokenizer.pad_token_id
            )
        return tf.cast(ids, tf.int32), scalar

    def num_tokens(self, texts):
        """The token count of each text, before truncation."""
        ids, _ = self._tokenize(texts)
        return ids.row_lengths()

    def truncated(self, texts):
        """Whether each text is longer than the packed length allows."""
        return self.num_tokens(texts) > self.sequence_length - 1

    def call(self, x):
        others = {}
        if isinstance(x, dict):
            if self.text_column not in x:
                raise ValueError(
                    f"TextPreprocessor reads the text from input "
                    f"{self.text_column!r}; received inputs {sorted(x)}."
                )
            others = {k: v for k, v in x.items() if k != self.text_column}
            x = x[self.text_column]
        ids, scalar = self._tokenize(x)
        ids = ids[:, : self.sequence_length - 1]
        end = tf.fill(
            [ids.nrows(), 1], tf.cast(self.tokenizer.end_token_id, tf.int32)
        )
        ids = tf.concat([ids, end], axis=1)
        batch = ids.nrows()
        token_ids = ids.to_tensor(
            default_value=self.tokenizer.pad_token_id,
            shape=[batch, self.sequence_length],
        )
        padding_mask = tf.sequence_mask(
            ids.row_lengths(), self.sequence_length, dtype=tf.int32
        )
        if scalar:
            token_ids, padding_mask = token_ids[0], padding_mask[0]
        return {**others, "token_ids": token_ids, "padding_mask": padding_mask}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.layers.serialize(self.tokenizer),
                "sequence_length": self.sequence_length,
                "text_column": self.text_column,
            }
        )
        return config
