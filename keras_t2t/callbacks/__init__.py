from keras_t2t.callbacks.backup_and_restore import BackupAndRestore
from keras_t2t.callbacks.best_on_validation import BestOnValidation

__all__ = ["BackupAndRestore", "BestOnValidation"]
