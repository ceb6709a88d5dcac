from keras_t2t.metrics.pr_auc import PRAUC
from keras_t2t.metrics.pr_auc import pr_auc_score

__all__ = ["PRAUC", "pr_auc_score"]
