from keras_t2t.export.saved_model import export_saved_model

__all__ = ["export_saved_model"]
