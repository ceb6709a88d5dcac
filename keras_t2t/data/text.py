import io
import warnings

import keras

from keras_t2t import _arguments
from keras_t2t.models.teacher2task_preprocessor import Teacher2TaskPreprocessor


@_arguments.suggests_keywords
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
            Texts longer than `max_sentence_length` bytes (4192 unless
            given) are left out of training by SentencePiece: a warning
            says how many.

    Returns:
        The serialized model proto, as bytes.

    Example:
    ```python
    proto = keras_t2t.data.train_sentencepiece(train_texts, 8000)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    ```
    """
    import sentencepiece

    # Three ids are reserved: padding, end and unknown.
    _arguments.integer("vocabulary_size", vocabulary_size, 4)
    _arguments.choice("model_type", model_type, ("unigram", "bpe"))
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
    # SentencePiece skips, without a word, the texts longer than this.
    limit = int(options.get("max_sentence_length", 4192))
    skipped = sum(len(text.encode("utf-8")) > limit for text in texts)
    if skipped:
        warnings.warn(
            f"{skipped} of {len(texts)} texts are longer than "
            f"max_sentence_length={limit} bytes: SentencePiece leaves them "
            "out of the tokenizer's training. Pass a larger "
            "`max_sentence_length` to train on them.",
            stacklevel=2,
        )
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, **options
        )
    except RuntimeError as error:
        # SentencePiece refuses a vocabulary smaller than the texts'
        # characters, among others; its message says which.
        raise ValueError(
            "SentencePiece could not train a tokenizer with "
            f"vocabulary_size={vocabulary_size!r}, "
            f"model_type={model_type!r}: {str(error).strip()}"
        ) from None
    return model.getvalue()


@keras.saving.register_keras_serializable(package="keras_t2t")
class TextPreprocessor(Teacher2TaskPreprocessor):
    """`keras_t2t.models.Teacher2TaskPreprocessor` under its first name.

    The same layer, with `sequence_length` required as it was: it takes
    and returns `(x, y, sample_weight)`, and with `x` alone returns the
    dict of `token_ids`, `padding_mask` and the other inputs. Kept so that
    code and models saved with this name keep working.

    Example:
    ```python
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    preprocessor = keras_t2t.data.TextPreprocessor(tokenizer, 64)
    preprocessor({"text": tf.constant(["a fine film", "dull"])})
    ```
    """

    @_arguments.suggests_keywords
    def __init__(self, tokenizer, sequence_length, **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)
