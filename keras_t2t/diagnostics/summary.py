"""What a `TeacherReport` shows of many teachers, in place of N x N.

A crowd of 1,000 workers makes per-teacher tables a thousand rows long and
teacher-by-teacher matrices a million cells, most of them empty (two
workers rarely score the same item). Above `summarize_above` teachers the
report shows instead: the distribution of each per-teacher statistic over
the teachers (quantiles here, histograms in `plot`), the most conflicting
pairs among those that co-scored at least `min_overlap` rows, and each
teacher's skill with its counts, shrunk towards the pool so that a worker
with three lucky votes is not ranked first.
"""

import numpy as np

from keras_t2t.diagnostics.statistics import shrunk_rate
from keras_t2t.diagnostics.statistics import wilson_interval

# (name shown, TeacherReport attribute or key, histogram range): the
# per-teacher statistics whose distribution the summary shows. "log" bins
# the positive values on a log scale: a crowd's activity is Zipf-like, a
# few workers score hundreds of rows and most a handful, which linear bins
# would put all in the first.
DISTRIBUTIONS = (
    ("scored", "scored", "log"),
    ("coverage", "coverage", "log"),
    ("overlap", "overlap", "log"),
    ("conflict", "conflict", "log"),
    ("mean score", "mean_score", (0.0, 1.0)),
    ("labelled", "labelled_scored", "log"),
    ("PR-AUC", "pr_auc", (0.0, 1.0)),
    ("ECE", "ece", (0.0, 1.0)),
    ("skill (shrunk)", "skill", (0.0, 1.0)),
    ("agreement (shrunk)", "agreement_shrunk", (0.0, 1.0)),
    ("fidelity MAE", "fidelity_mae", (0.0, 1.0)),
    ("fidelity r", "fidelity_corr", (-1.0, 1.0)),
    ("task cosine to ground truth", "ground_truth_similarity", (-1.0, 1.0)),
)
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)
HISTOGRAM_BINS = 20


def skill_estimates(labelled, correct, agreement_rows, agreement, shrinkage):
    """Each teacher's skill, its counts, a shrunk estimate and an interval.

    Two measures, labels pooled: accuracy, the share of a teacher's votes
    on labelled rows that match the ground truth, and agreement, the share
    of its votes that match the majority of the other teachers' votes on
    the row (no ground truth needed; rows where the others tie are left
    out). Each is shrunk towards the pooled rate with `shrinkage`
    pseudo-rows, with a 95% Wilson interval on the raw counts. `skill` is
    the shrunk accuracy, or the shrunk agreement where no teacher scored a
    labelled row.

    Args:
        labelled, correct, agreement_rows, agreement: int arrays `(N,)`.
        shrinkage: float. Pseudo-rows of the pooled rate.

    Returns:
        A dict of `(N,)` arrays (`labelled`, `correct`, `accuracy`,
        `accuracy_shrunk`, `accuracy_low`, `accuracy_high`,
        `agreement_rows`, `agreement`, `agreement_rate`,
        `agreement_shrunk`, `agreement_low`, `agreement_high`, `skill`),
        `basis` (`"ground truth"` or `"agreement"`) and `order`, the
        teachers from the highest skill to the lowest (n/a last; ties:
        more rows first).
    """
    values = {
        "labelled": np.asarray(labelled, np.int64),
        "correct": np.asarray(correct, np.int64),
        "agreement_rows": np.asarray(agreement_rows, np.int64),
        "agreement": np.asarray(agreement, np.int64),
    }
    for name, successes, trials in (
        ("accuracy", "correct", "labelled"),
        ("agreement", "agreement", "agreement_rows"),
    ):
        s, n = values[successes], values[trials]
        rate = "accuracy" if name == "accuracy" else "agreement_rate"
        with np.errstate(invalid="ignore", divide="ignore"):
            values[rate] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        values[f"{name}_shrunk"] = shrunk_rate(s, n, shrinkage)
        values[f"{name}_low"], values[f"{name}_high"] = wilson_interval(s, n)
    if values["labelled"].sum() > 0:
        values["basis"] = "ground truth"
        values["skill"] = values["accuracy_shrunk"]
        rows = values["labelled"]
    else:
        values["basis"] = "agreement"
        values["skill"] = values["agreement_shrunk"]
        rows = values["agreement_rows"]
    skill = np.where(np.isnan(values["skill"]), -np.inf, values["skill"])
    values["order"] = np.lexsort((-rows, -skill))
    return values


def top_conflicts(teachers, rows, differ, names, min_overlap, top_k):
    """The `top_k` pairs whose votes differ most often, labels pooled,
    among the pairs that co-scored at least `min_overlap` rows (fewer
    rows make a share of 1.0 out of one row rank first).

    Returns:
        `(pairs, shares)`: a list of dicts (`teachers`: two names,
        `scored`: rows both scored, `conflict`: the share where their
        votes differ), most conflicting first (ties: more rows first);
        and the conflict share of every pair that qualifies.
    """
    rows = np.asarray(rows).sum(axis=1)
    differ = np.asarray(differ).sum(axis=1)
    eligible = np.flatnonzero(rows >= min_overlap)
    shares = differ[eligible] / rows[eligible]
    order = np.lexsort((-rows[eligible], -shares))[:top_k]
    pairs = [
        {
            "teachers": (names[teachers[i, 0]], names[teachers[i, 1]]),
            "scored": int(rows[i]),
            "conflict": float(share),
        }
        for i, share in zip(eligible[order], shares[order], strict=True)
    ]
    return pairs, shares


def distribution(values, value_range):
    """Quantiles and a histogram of per-teacher values, NaN left out.

    Returns:
        A dict: `measured` and `missing` counts, `quantiles` (at
        `QUANTILES`), `counts` and `edges` of a `HISTOGRAM_BINS`-bin
        histogram over `value_range`, or with `value_range="log"` over
        log-spaced bins of the positive values (`log` True, `zeros` the
        values at or below 0, left out of the bins).
    """
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    result = {"measured": len(finite), "missing": len(values) - len(finite)}
    result["log"] = value_range == "log"
    result["zeros"] = 0
    result["quantiles"] = np.full(len(QUANTILES), np.nan)
    if len(finite):
        result["quantiles"] = np.quantile(finite, QUANTILES)
    if result["log"]:
        positive = finite[finite > 0]
        result["zeros"] = len(finite) - len(positive)
        low, high = (
            (positive.min(), positive.max()) if len(positive) else (1, 1)
        )
        if low == high:
            low, high = low / 2, high * 2
        edges = np.geomspace(low, high, HISTOGRAM_BINS + 1)
        result["counts"] = np.histogram(positive, edges)[0]
        result["edges"] = edges
        return result
    counts, edges = np.histogram(
        np.clip(finite, *value_range), HISTOGRAM_BINS, range=value_range
    )
    result["counts"], result["edges"] = counts, edges
    return result


def per_teacher(report, key):
    """A per-teacher `(N,)` value of `report`, labels pooled as
    `to_frame(per_label=False)` pools them; `None` when not measured."""
    if key in ("skill", "agreement_shrunk"):
        return report.skill[key]
    if key == "ground_truth_similarity":
        similarity = report.ground_truth_similarity
        return None if similarity is None else similarity[1:]
    values = getattr(report, key)
    if values is None:
        return None
    if key in ("scored", "labelled_scored", "fidelity_rows"):
        return values.sum(axis=1)
    if key in ("mean_score", "fidelity_mae"):
        # Means over every row scored: weighted by each label's rows.
        rows = report.scored if key == "mean_score" else report.fidelity_rows
        total = rows.sum(axis=1)
        weighted = np.nansum(values * rows, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, weighted / np.maximum(total, 1), np.nan)
    # Shares, PR-AUC, ECE, r: the mean over the labels that have a value.
    measured = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            measured.any(axis=1),
            np.nansum(values, axis=1) / np.maximum(measured.sum(axis=1), 1),
            np.nan,
        )


def notes(report, grouped=True):
    """The report's notes on what it could not measure.

    `grouped`: one note per kind of gap, with a few names each (a note per
    teacher would run to a thousand lines); else a note per teacher.
    """
    lines = []
    if not report.labelled.any():
        skill = ", skill is agreement with the other teachers' majority"
        lines.append(
            "No row has a ground-truth label: PR-AUC and ECE are n/a"
            f"{skill if grouped else ''} (pass `ground_truth=` naming the "
            "label column, if there is one)."
        )
    teacher_notes = _grouped_teacher_notes if grouped else _teacher_notes
    for label in range(report.num_labels):
        where = f" (label {label})" if report.num_labels > 1 else ""
        if report.labelled[label] and not report.positives[label]:
            lines.append(
                f"No ground-truth label is positive{where}: PR-AUC is n/a."
            )
        lines += teacher_notes(report, label, where)
    return lines + _student_notes(report)


def _grouped_teacher_notes(report, label, where):
    lines = []
    silent = report.scored[:, label] == 0
    if silent.any():
        lines.append(
            f"{_some(report.teachers, silent)} scored no row{where}: "
            "coverage 0, their other statistics n/a."
        )
    if report.labelled[label]:
        few = ~silent & (report.labelled_scored[:, label] < report.min_labelled)
        if few.any():
            lines.append(
                f"{_some(report.teachers, few)} scored fewer than "
                f"min_labelled={report.min_labelled} labelled rows"
                f"{where}: their PR-AUC and ECE n/a."
            )
    return lines


def _teacher_notes(report, label, where):
    lines = []
    for k, name in enumerate(report.teachers):
        if not report.scored[k, label]:
            lines.append(
                f"Teacher {name!r} scored no row{where}: coverage 0, "
                "its other statistics n/a."
            )
        elif (
            report.labelled[label]
            and report.labelled_scored[k, label] < report.min_labelled
        ):
            lines.append(
                f"Teacher {name!r} scored "
                f"{report.labelled_scored[k, label]} labelled row(s)"
                f"{where}, fewer than min_labelled="
                f"{report.min_labelled}: PR-AUC and ECE n/a."
            )
    return lines


def _student_notes(report):
    """The note on a student read on too few labelled rows, if any."""
    if report.student is None or not report.labelled.any():
        return []
    short = report.student["labelled"] < report.min_labelled
    if not short.any():
        return []
    return [
        f"The student's reading has fewer than min_labelled="
        f"{report.min_labelled} labelled rows on label(s) "
        f"{np.flatnonzero(short).tolist()}: PR-AUC and ECE n/a."
    ]


def _some(names, mask, shown=5):
    chosen = np.flatnonzero(mask)
    listed = ", ".join(repr(str(names[k])) for k in chosen[:shown])
    more = ", ..." if len(chosen) > shown else ""
    return f"{len(chosen)} teacher(s) ({listed}{more})"


def byte_size(count):
    """`count` bytes in words: bytes, KiB or MiB."""
    if count < 1024:
        return f"{count} bytes"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.1f} MiB"
