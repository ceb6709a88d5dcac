"""The aggregation heuristics Teacher2Task replaces, and their pseudo-labels."""

import numpy as np

AGGREGATIONS = ("teacher_mean", "majority_vote", "dawid_skene", "snorkel")
# Snorkel's LabelModel refuses fewer labelling functions.
SNORKEL_MIN_TEACHERS = 3


def aggregate(teacher_scores, multiclass=False):
    """The aggregation heuristics: mean, majority vote, Dawid-Skene, Snorkel.

    Each gives a score per row and label; a row no teacher scored gets 0.5
    (1 / classes for multi-class labels). Votes are teacher confidences
    thresholded at 0.5 (multi-class: each teacher's top class); the vote
    score is the share of votes; Dawid-Skene (crowd-kit) and Snorkel's
    LabelModel are fitted on the votes of all rows, without labels, one
    label at a time (multi-class: one model over the classes). These need
    every teacher at inference; the students trained on them do not.
    Snorkel's LabelModel needs 3 teachers or more: with fewer it is left
    out of the returned dict (and of the report).
    """
    present = ~np.isnan(teacher_scores)
    count = present.sum(axis=1)
    mean = _nan_mean(teacher_scores)
    if multiclass:
        return _aggregate_classes(teacher_scores, mean)
    votes = (np.nan_to_num(teacher_scores) >= 0.5).astype("float32")
    vote = np.where(present, votes, 0).sum(axis=1) / np.maximum(count, 1)
    fit_snorkel = teacher_scores.shape[1] >= SNORKEL_MIN_TEACHERS
    dawid_skene = np.full(mean.shape, 0.5, "float32")
    snorkel = np.full(mean.shape, 0.5, "float32")
    for label in range(teacher_scores.shape[2]):
        said = np.where(present[:, :, label], votes[:, :, label], -1)
        dawid_skene[:, label] = _dawid_skene(said, 2)[:, 1]
        if fit_snorkel:
            snorkel[:, label] = _snorkel(said, 2)[:, 1]
    unscored = count == 0
    aggregated = {
        "teacher_mean": np.where(unscored, 0.5, mean),
        "majority_vote": np.where(unscored, 0.5, vote),
        "dawid_skene": dawid_skene,
    }
    if fit_snorkel:
        aggregated["snorkel"] = snorkel
    return aggregated


def _aggregate_classes(teacher_scores, mean):
    num_classes = teacher_scores.shape[2]
    scored = ~np.isnan(teacher_scores).all(axis=2)  # (rows, teachers)
    said = np.where(
        scored, np.nan_to_num(teacher_scores, nan=-1).argmax(axis=2), -1
    )
    votes = np.stack([(said == c).sum(axis=1) for c in range(num_classes)], 1)
    count = scored.sum(axis=1, keepdims=True)
    uniform = np.full(mean.shape, 1.0 / num_classes, "float32")
    unscored = count == 0
    aggregated = {
        "teacher_mean": np.where(unscored, uniform, mean),
        "majority_vote": np.where(
            unscored, uniform, votes / np.maximum(count, 1)
        ),
        "dawid_skene": _dawid_skene(said, num_classes),
    }
    if said.shape[1] >= SNORKEL_MIN_TEACHERS:
        aggregated["snorkel"] = _snorkel(said, num_classes)
    return aggregated


def _dawid_skene(said, num_classes):
    """crowd-kit's Dawid-Skene on votes (-1: no vote): `(rows, classes)`."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    rows, teachers = np.nonzero(said >= 0)
    frame = pd.DataFrame(
        {"task": rows, "worker": teachers, "label": said[rows, teachers]}
    )
    probabilities = DawidSkene(n_iter=100).fit_predict_proba(frame)
    scores = np.full((len(said), num_classes), 1.0 / num_classes, "float32")
    for label in probabilities.columns:
        scores[probabilities.index.to_numpy(), int(label)] = probabilities[
            label
        ].to_numpy()
    return scores


def _snorkel(said, num_classes):
    """Snorkel's LabelModel on votes (-1 abstains): `(rows, classes)`."""
    from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=num_classes, verbose=False)
    model.fit(said.astype(int), n_epochs=200, seed=0, progress_bar=False)
    return model.predict_proba(said.astype(int)).astype("float32")


def _nan_mean(values):
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=1)
    return total / np.maximum(present.sum(axis=1), 1)


def pseudo_labels(task, rows, labelled, scores=None):
    """Ground truth where known, else an aggregation's scores (default:
    the teachers' mean confidence); NaN on rows no teacher scored."""
    if scores is None:
        scores = _nan_mean(task.teacher_scores)
    targets = scores[rows].astype("float32").copy()
    unscored = ~(~np.isnan(task.teacher_scores[rows])).any(axis=(1, 2))
    targets[unscored] = np.nan
    targets[labelled] = task.labels[rows][labelled]
    return targets


# crowd-kit's aggregations of a crowd's hard labels (`recipes.crowd_digits`);
# the teacher mean of one-hot labels is majority vote's vote share.
CROWD_AGGREGATIONS = (
    "majority_vote",
    "dawid_skene",
    "one_coin_dawid_skene",
    "glad",
    "mace",
    "wawa",
    "mmsr",
)


def aggregate_crowd(said, num_classes, names=CROWD_AGGREGATIONS):
    """crowd-kit's aggregations of hard labels, fitted without ground truth.

    Args:
        said: int array `(rows, annotators)`. Each annotator's class per
            row, -1 where it gave none.
        num_classes: int.
        names: the aggregations to run, from `CROWD_AGGREGATIONS`.

    Returns:
        `(scores, failures)`: `{name: (rows, num_classes) float32}` (each
        aggregation's class probabilities; uniform on rows nobody
        labelled) and `{name: why it did not run}`. MMSR gives scores, not
        probabilities: its scores are its hard labels, one-hot.
    """
    import pandas as pd

    rows, workers = np.nonzero(said >= 0)
    frame = pd.DataFrame(
        {"task": rows, "worker": workers, "label": said[rows, workers]}
    )
    methods = _crowd_methods()
    scores, failures = {}, {}
    for name in names:
        try:
            probabilities = methods[name](frame)
        except Exception as error:  # Reported, not hidden: see failures.
            failures[name] = f"{type(error).__name__}: {error}"[:300]
            continue
        table = np.full((len(said), num_classes), 1 / num_classes, "float32")
        for label in probabilities.columns:
            table[probabilities.index.to_numpy(), int(label)] = probabilities[
                label
            ].to_numpy()
        scores[name] = table
    return scores, failures


def _wawa(frame):
    from crowdkit.aggregation import MajorityVote
    from crowdkit.aggregation import Wawa

    # Wawa's own predict fails with scikit-learn >= 1.6 (its
    # check_is_fitted wants `__sklearn_tags__`); its fit works, and its
    # predict is this weighted vote.
    skills = Wawa().fit(frame).skills_
    return MajorityVote().fit(frame, skills=skills).probas_


def _mmsr(frame):
    import pandas as pd
    from crowdkit.aggregation import MMSR

    labels = MMSR().fit_predict(frame)
    return pd.get_dummies(labels).astype("float32")


def _crowd_methods():
    from crowdkit import aggregation as ck

    return {
        "majority_vote": lambda f: ck.MajorityVote().fit_predict_proba(f),
        "dawid_skene": lambda f: ck.DawidSkene(n_iter=100).fit_predict_proba(f),
        "one_coin_dawid_skene": lambda f: ck.OneCoinDawidSkene(
            n_iter=100
        ).fit_predict_proba(f),
        "glad": lambda f: ck.GLAD().fit_predict_proba(f),
        "mace": lambda f: ck.MACE(random_state=0).fit_predict_proba(f),
        "wawa": _wawa,
        "mmsr": _mmsr,
    }
