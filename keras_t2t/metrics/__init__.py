from keras_t2t.metrics.pr_auc import PRAUC

__all__ = ["PRAUC"]
