import numpy as np

from keras_t2t import _arguments


@_arguments.suggests_keywords
def make_synthetic_teachers(
    num_rows=512,
    num_teachers=3,
    num_labels=1,
    sequence_length=8,
    feature_dim=None,
    vocabulary_size=None,
    ground_truth_fraction=0.2,
    teacher_coverage=0.8,
    seed=0,
):
    """Generates a small multi-teacher table with known true labels.

    Each row is a sequence (feature vectors, or token ids) whose true labels
    depend on the mean of a hidden per-position score. Every teacher sees
    that signal through its own distortion, so teachers disagree in style:
    teacher 1 is noisy but calibrated, teacher 2 overconfident, teacher 3
    biased towards positives, further teachers noisier still. Each teacher
    scores a random `teacher_coverage` share of the rows; the ground truth
    is known for a `ground_truth_fraction` share.

    Args:
        num_rows: int. Rows in the table. Defaults to 512.
        num_teachers: int. Defaults to 3.
        num_labels: int. Defaults to 1.
        sequence_length: int. The longest sequence. Defaults to 8.
        feature_dim: int. The feature size, for feature input.
        vocabulary_size: int. The token vocabulary, for text input. Set
            exactly one of `feature_dim` (default 8) and `vocabulary_size`.
        ground_truth_fraction: float. Share of rows with labels.
        teacher_coverage: float. Share of rows each teacher scores.
        seed: int. Defaults to 0.

    Returns:
        A dict with `inputs` (`{"features" or "token_ids", "padding_mask"}`),
        `labels` `(rows, num_labels)` (NaN where not known), `true_labels`
        `(rows, num_labels)` (all known, for evaluation) and
        `teacher_scores` `(rows, num_teachers, num_labels)` (NaN where the
        teacher did not score).
    """
    for name, value, least, optional in (
        ("num_rows", num_rows, 1, False),
        ("num_teachers", num_teachers, 1, False),
        ("num_labels", num_labels, 1, False),
        ("sequence_length", sequence_length, 1, False),
        ("feature_dim", feature_dim, 1, True),
        ("vocabulary_size", vocabulary_size, 2, True),  # 0 is padding.
        ("seed", seed, 0, True),
    ):
        _arguments.integer(name, value, least, allow_none=optional)
    _arguments.number("ground_truth_fraction", ground_truth_fraction, 0, 1)
    _arguments.number("teacher_coverage", teacher_coverage, 0, 1)
    if feature_dim is not None and vocabulary_size is not None:
        raise ValueError(
            "Set only one of `feature_dim` and `vocabulary_size`. Received: "
            f"feature_dim={feature_dim!r}, vocabulary_size={vocabulary_size!r}"
        )
    if feature_dim is None and vocabulary_size is None:
        feature_dim = 8
    rng = np.random.default_rng(seed)
    lengths = rng.integers(
        sequence_length // 2 + 1, sequence_length + 1, num_rows
    )
    padding_mask = (np.arange(sequence_length) < lengths[:, None]).astype(
        "int32"
    )

    if vocabulary_size is not None:
        token_ids = rng.integers(
            1, vocabulary_size, (num_rows, sequence_length)
        )
        token_ids = (token_ids * padding_mask).astype("int32")
        token_scores = rng.normal(size=(vocabulary_size, num_labels))
        token_scores[0] = 0.0
        position_scores = token_scores[token_ids]
        inputs = {"token_ids": token_ids}
    else:
        features = rng.normal(size=(num_rows, sequence_length, feature_dim))
        features *= padding_mask[..., None]
        weights = rng.normal(size=(feature_dim, num_labels))
        position_scores = features @ weights
        inputs = {"features": features.astype("float32")}
    inputs["padding_mask"] = padding_mask

    signal = position_scores.sum(axis=1) / lengths[:, None]
    signal = (signal - signal.mean(axis=0)) / signal.std(axis=0)
    true_labels = signal + 0.3 * rng.normal(size=signal.shape) > 0.5
    true_labels = true_labels.astype("float32")

    scales = [1.5, 5.0, 2.0]
    offsets = [0.0, 0.0, 1.0]
    scores = []
    for k in range(num_teachers):
        scale = scales[k] if k < len(scales) else 1.0
        offset = offsets[k] if k < len(offsets) else 0.0
        noise = (0.6 + 0.2 * k) * rng.normal(size=signal.shape)
        logits = scale * (signal - 0.5 + noise) + offset
        score = 1.0 / (1.0 + np.exp(-logits))
        score[rng.random(num_rows) >= teacher_coverage] = np.nan
        scores.append(score)
    teacher_scores = np.stack(scores, axis=1).astype("float32")

    labels = true_labels.copy()
    labels[rng.random(num_rows) >= ground_truth_fraction] = np.nan
    return {
        "inputs": inputs,
        "labels": labels,
        "true_labels": true_labels,
        "teacher_scores": teacher_scores,
    }
