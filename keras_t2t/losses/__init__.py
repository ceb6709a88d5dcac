from keras_t2t.losses.masked_multi_task_loss import MaskedMultiTaskLoss

__all__ = ["MaskedMultiTaskLoss"]
