from keras_t2t.data.expand_arrays import expand_arrays

__all__ = ["expand_arrays"]
