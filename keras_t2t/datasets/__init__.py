from keras_t2t.datasets.synthetic import make_synthetic_teachers

__all__ = ["make_synthetic_teachers"]
