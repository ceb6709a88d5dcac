from keras_t2t.callbacks.backup_and_restore import BackupAndRestore

__all__ = ["BackupAndRestore"]
