"""The classical reference: logistic regression on fixed features."""

import numpy as np

from recipes.evaluation import pr_auc


def logistic_regression(features):
    """A classical reference: logistic regression on fixed features.

    Targets may be soft (pseudo-labels): each row then counts as a positive
    with weight p and a negative with weight 1 - p. The inverse
    regularisation strength is chosen on the validation rows.
    """
    from sklearn.linear_model import LogisticRegression

    def fit_predict(rows, targets, val, val_labels, test):
        targets = np.asarray(targets).reshape(len(rows), -1)
        outputs = []
        for label in range(targets.shape[1]):
            keep = ~np.isnan(targets[:, label])
            p = targets[keep, label]
            x = features[rows[keep]]
            x2 = _stack(x, x)
            y2 = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
            w2 = np.concatenate([p, 1 - p])
            best, best_model = -1.0, None
            for c in (0.1, 1.0, 10.0):
                model = LogisticRegression(C=c, max_iter=2000)
                model.fit(x2, y2, sample_weight=w2)
                value = pr_auc(
                    val_labels[:, label],
                    model.predict_proba(features[val])[:, 1],
                )
                # NaN when no validation row is positive for this label:
                # then the first (strongest regularisation) is kept.
                if best_model is None or value > best:
                    best, best_model = value, model
            outputs.append(best_model.predict_proba(features[test])[:, 1])
        return np.stack(outputs, axis=1)

    return fit_predict


def _stack(a, b):
    if hasattr(a, "tocsr"):
        from scipy.sparse import vstack

        return vstack([a, b])
    return np.concatenate([a, b])
