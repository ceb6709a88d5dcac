"""The pictures of a `TeacherReport`, drawn with matplotlib's Agg renderer.

Figures are `matplotlib.figure.Figure` objects saved directly, not pyplot
figures: no backend is switched and no global state is touched, so the
report draws the same in a notebook, a server or a test.
"""

import math

import numpy as np

_DPI = 100


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "Plotting a teacher report needs matplotlib: "
            "`pip install keras-t2t[diagnostics]` (or `pip install "
            "matplotlib`)."
        ) from None
    return Figure(figsize=(width, height), dpi=_DPI)


def reliability(report, path, panels=None):
    """A reliability diagram per teacher (and the student), labels pooled:
    the positive rate of each score bin against its mean score.

    `panels` (`{name: (count, mean score, positive rate)}`) replaces the
    report's per-teacher `calibration`, e.g. with the teachers pooled."""
    calibration = report.calibration if panels is None else panels
    names = list(calibration)
    columns = min(len(names), 4)
    rows = math.ceil(len(names) / columns)
    figure = _figure(2.6 * columns, 2.6 * rows + 0.3)
    edges = np.linspace(0.0, 1.0, report.num_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for index, name in enumerate(names):
        axis = figure.add_subplot(rows, columns, index + 1)
        count, mean_score, positive_rate = calibration[name]
        total = int(count.sum())
        axis.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        if total:
            filled = count > 0
            axis.bar(
                centres[filled],
                positive_rate[filled],
                width=1.0 / report.num_bins,
                color="#9ecae1",
                edgecolor="#3182bd",
                linewidth=0.6,
            )
            axis.plot(
                mean_score[filled], positive_rate[filled], "o-", markersize=3
            )
            gap = np.abs(mean_score - positive_rate)[filled]
            ece = float(np.sum(count[filled] * gap) / total)
            title = f"{name}\nECE {ece:.3f}, {total} labelled"
            if total < report.min_labelled:
                title = f"{name}\nECE n/a ({total} labelled)"
        else:
            axis.text(0.5, 0.5, "no labelled rows", ha="center", va="center")
            title = f"{name}\nn/a"
        axis.set_title(title, fontsize=8)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
        if index % columns == 0:
            axis.set_ylabel("positive rate", fontsize=7)
        if index >= len(names) - columns:
            axis.set_xlabel("confidence", fontsize=7)
    title = "Reliability on labelled rows"
    if report.num_labels > 1:
        title += " (labels pooled)"
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path)


def _heatmap(
    figure, matrix, names, vmin, vmax, cmap, colorbar_label, diagonal=True
):
    axis = figure.add_subplot(1, 1, 1)
    if not diagonal:
        matrix = matrix.copy()
        np.fill_diagonal(matrix, np.nan)
    shown = np.ma.masked_invalid(matrix)
    image = axis.imshow(shown, vmin=vmin, vmax=vmax, cmap=cmap)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.tick_params(labelsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            value = matrix[i, j]
            if i == j and not diagonal:
                text = "-"
            else:
                text = "n/a" if np.isnan(value) else f"{value:.2f}"
            dark = np.isfinite(value) and image.norm(value) > 0.6
            axis.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    colorbar = figure.colorbar(image, ax=axis, shrink=0.8)
    colorbar.set_label(colorbar_label, fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    return axis


def conflict(report, path, label=None):
    """Teacher-by-teacher conflict: share of co-scored rows whose votes
    differ."""
    matrix = np.array(report.conflict_matrix(label), dtype=np.float64)
    names = list(report.teachers)
    size = 1.2 + 0.7 * len(names)
    figure = _figure(size + 1.2, size)
    off_diagonal = matrix[~np.eye(len(names), dtype=bool)]
    top = np.nanmax(off_diagonal) if np.isfinite(off_diagonal).any() else 0
    axis = _heatmap(
        figure,
        matrix,
        names,
        0.0,
        max(float(top), 0.05),
        "Reds",
        "conflicting share",
        diagonal=False,
    )
    which = "all labels" if label is None else f"label {label}"
    axis.set_title(f"Votes that differ where both scored ({which})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)


def task_similarity(report, path):
    """Cosine similarity of the student's task embeddings."""
    names = list(report.task_names)
    size = 1.2 + 0.7 * len(names)
    figure = _figure(size + 1.2, size)
    axis = _heatmap(
        figure,
        np.asarray(report.task_similarity, np.float64),
        names,
        -1.0,
        1.0,
        "RdBu_r",
        "cosine similarity",
    )
    axis.set_title("Task embeddings", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)


def histograms(report, path):
    """A histogram over the teachers of each per-teacher statistic the
    report measured, and of the conflict of the ranked pairs."""
    names = [
        name
        for name, values in report.distributions.items()
        if values["measured"]
    ]
    columns = min(len(names), 4)
    rows = math.ceil(len(names) / columns)
    figure = _figure(3.0 * columns, 2.3 * rows + 0.4)
    for index, name in enumerate(names):
        values = report.distributions[name]
        edges = values["edges"]
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.bar(
            edges[:-1],
            values["counts"],
            width=np.diff(edges),
            align="edge",
            color="#9ecae1",
            edgecolor="#3182bd",
            linewidth=0.6,
        )
        median = values["quantiles"][2]
        if median > 0 or not values["log"]:
            axis.axvline(median, color="#de2d26", linewidth=1)
        what = "pairs" if name == "pair conflict" else "teachers"
        title = f"{name}\nmedian {median:.3g}, {values['measured']} {what}"
        if values["missing"]:
            title += f", {values['missing']} n/a"
        if values["log"]:
            axis.set_xscale("log")
            title += f", {values['zeros']} at 0"
        axis.set_title(title, fontsize=8)
        axis.tick_params(labelsize=7)
        if index % columns == 0:
            axis.set_ylabel("count", fontsize=7)
    figure.suptitle(
        f"{len(report.teachers)} teachers: per-teacher statistics "
        "(labels pooled)",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path)


def top_conflicts(report, path):
    """The most conflicting pairs as bars, each with the rows both
    scored."""
    pairs = report.top_conflicts
    figure = _figure(6.0, 1.2 + 0.3 * max(len(pairs), 1))
    axis = figure.add_subplot(1, 1, 1)
    if pairs:
        labels = [f"{a} / {b}" for a, b in (p["teachers"] for p in pairs)]
        shares = [p["conflict"] for p in pairs]
        positions = np.arange(len(pairs))[::-1]
        axis.barh(positions, shares, color="#fc9272", edgecolor="#de2d26")
        axis.set_yticks(positions, labels)
        for y, pair in zip(positions, pairs, strict=True):
            axis.text(
                pair["conflict"],
                y,
                f" {pair['conflict']:.2f} of {pair['scored']}",
                va="center",
                fontsize=7,
            )
        axis.set_xlim(0, 1.15)
    else:
        axis.text(
            0.5,
            0.5,
            f"no pair co-scored {report.min_overlap} rows",
            ha="center",
            va="center",
        )
    axis.tick_params(labelsize=7)
    axis.set_xlabel("share of co-scored rows whose votes differ", fontsize=8)
    axis.set_title(
        f"Most conflicting pairs (>= {report.min_overlap} rows together)",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path)
