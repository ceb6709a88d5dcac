"""A recipe's data as tables for the `keras-t2t` command line.

Writes `train.parquet` (the rows outside the test split, with the ground
truth only where the recipe's label budget gives it, seed 0: its labelled
training and validation rows) and `test.parquet` (the test rows, every
label known), in the table contract of `keras_t2t.data.expand`: the input
column `features` holds each row's sequence of vectors (patches, frames);
`label` and each teacher column hold a number per row, or a list of one
number per label for a multi-label recipe (missing: None or NaN).

Usage:
    python -m recipes.tables image_digits outputs/image_tables
    keras-t2t fit outputs/image_tables/train.parquet --inputs features \\
        --ground-truth label --teachers logistic_small,knn_low_res,\\
naive_bayes,top_half,human --output runs/image
    keras-t2t report runs/image outputs/image_tables/test.parquet
"""

import argparse
import os

import numpy as np

from recipes import common

RECIPES = ("image_digits", "video_clips")


def recipe_task(name):
    """The recipe's `common.Task` at its default settings."""
    parser = argparse.ArgumentParser()
    common.add_common_flags(parser, name=name)
    args = parser.parse_args([])
    if name == "image_digits":
        from recipes import image_digits

        return image_digits.build_task(args), args
    from recipes import video_clips

    # The defaults of `video_clips.main`.
    args.clips, args.shift = 4000, 1
    return video_clips.build_task(args), args


def write_tables(task, args, directory):
    """Writes `train.parquet` and `test.parquet`; returns their paths."""
    import pandas as pd

    train, val, test, labelled = common.split_rows(
        len(task.labels), args, seed=0, groups=task.groups
    )
    known = np.zeros(len(task.labels), bool)
    known[train[labelled]] = True
    known[val] = True
    rest = np.sort(np.concatenate([train, val]))
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for split, rows in (("train", rest), ("test", test)):
        features = task.inputs["features"][rows].astype("float64")
        columns = {"features": [list(map(list, x)) for x in features]}
        labels = task.labels[rows].copy()
        if split == "train":
            labels[~known[rows]] = np.nan  # The recipe's label budget.
        columns["label"] = _cells(labels)
        for k, teacher in enumerate(task.teacher_names):
            columns[teacher] = _cells(task.teacher_scores[rows, k])
        paths[split] = os.path.join(directory, f"{split}.parquet")
        pd.DataFrame(columns).to_parquet(paths[split])
    return paths


def _cells(values):
    """A column's cells: numbers (one label) or lists (several), None for
    a row with no value."""
    if values.shape[1] == 1:
        return values[:, 0].astype("float64")
    return [None if np.isnan(v).all() else list(map(float, v)) for v in values]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", choices=RECIPES)
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    task, recipe_args = recipe_task(args.recipe)
    paths = write_tables(task, recipe_args, args.directory)
    teachers = ",".join(task.teacher_names)
    print(f"Wrote {paths['train']} and {paths['test']}; fit with:")
    print(
        f"keras-t2t fit {paths['train']} --inputs features --ground-truth "
        f"label --teachers {teachers} --output RUN"
    )


if __name__ == "__main__":
    main()
