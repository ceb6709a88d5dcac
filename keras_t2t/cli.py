"""The `keras-t2t` command line: from a table to a served model.

    keras-t2t fit TABLE --inputs text --ground-truth label \\
        --teachers vader,textblob,afinn --output runs/reviews
    keras-t2t predict runs/reviews TABLE --output predictions.csv
    keras-t2t report runs/reviews TABLE

`fit` follows the documented path (README, "From a CSV to fit"): it
summarises the table, trains a SentencePiece tokenizer on the training
rows' texts (or reads numeric feature columns, or one column whose cells
are sequences of vectors), holds out labelled rows for validation, trains
a Teacher2Task student (sparse layout), keeps the checkpoint and the
reading of the ground truth that score best on validation, and writes
the run folder: `model.keras`, a TF Serving SavedModel at `serving/1`,
`run.json` (the table's columns and the validation figures), `report.md`
(the table's summary and `keras_t2t.diagnostics.teacher_report` on the
validation rows) and its pictures. `report` prints that report for any
table with the run's columns. The folder is written aside and renamed at
the end, so a failed or killed run leaves nothing in `--output` (and the
next run removes what a killed one left beside it).

The table is read as `keras_t2t.data.expand` reads it: a source cell is
a number, or a list (a JSON list in a CSV) of one number per label for
multi-label tables, NaN or empty where missing.

Bad input (a missing column, an unknown teacher, an unreadable file, a
score out of range, a malformed cell) exits with code 2 and one line
naming the problem, with the row and column of a bad cell.
"""

import json
import os
import shutil
import sys

import numpy as np

# The entry point and the parser are `keras_t2t_command` (outside the
# package, so that `--help` loads no framework); this module holds the
# commands. pandas and keras_hub are imported by the commands.


# The commands `keras_t2t_command.main` runs, by name, once the arguments
# are parsed there (that module loads no framework); set below.
COMMANDS = {}


class UsageError(ValueError):
    """Bad input from the command line: reported in one line, exit 2."""


# === Commands ===


def _fit(args):
    import keras

    import keras_t2t

    frame = _read_table(args.table)
    teachers = _names(args.teachers, "--teachers")
    inputs = _names(args.inputs, "--inputs")
    ignored = _names(args.ignore_columns, "--ignore-columns", required=False)
    _check_roles(inputs, args.ground_truth, teachers)
    if args.eval_every > args.steps:
        raise UsageError(
            f"--eval-every {args.eval_every} is more than --steps "
            f"{args.steps}: the run would never be scored."
        )
    _check_columns(frame, inputs + [args.ground_truth] + teachers, args.table)
    if os.path.exists(args.output) and os.listdir(args.output):
        raise UsageError(
            f"--output {args.output} exists and is not empty; choose a new "
            "run folder."
        )
    used = inputs + teachers + [args.ground_truth]
    unknown = [c for c in frame.columns if c not in used + ignored]
    if unknown:
        raise UsageError(
            f"{args.table}: column {unknown[0]!r} is neither an input, the "
            "ground truth nor a teacher; list it in --teachers, or in "
            "--ignore-columns to leave it out."
        )
    mode = _input_mode(frame, inputs)
    vocabulary = keras_t2t.TeacherVocabulary(teachers)
    model_inputs = _model_inputs(frame, inputs, mode)
    targets = _targets(
        frame, model_inputs, vocabulary, args.ground_truth, args.rescale
    )
    num_labels = targets.shape[-1]
    validation, train = _hold_out(targets[:, 0], args)

    keras.utils.set_random_seed(args.seed)
    train_inputs = _rows(model_inputs, train)
    validation_inputs = _rows(model_inputs, validation)
    options = dict(
        vocabulary=vocabulary,
        inputs=list(train_inputs),
        ground_truth=args.ground_truth,
    )
    train_table = _source_table(
        train_inputs, targets[train], teachers, args.ground_truth
    )
    classifier = _build_classifier(
        args, vocabulary, mode, train_inputs, num_labels
    )
    summary = keras_t2t.data.summarize(
        train_table,
        **options,
        preprocessor=classifier.preprocessor if mode == "text" else None,
    )
    print(summary)
    dataset = keras_t2t.data.expand(
        train_table,
        **options,
        shuffle_buffer=20_000,
        seed=args.seed,
        batch_size=args.batch_size,
        repeat=True,
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, decay_steps=args.steps
    )
    classifier.compile(optimizer=keras.optimizers.Adam(schedule), metrics=[])
    truth = targets[train, 0]
    labelled = ~np.isnan(truth).all(axis=1)
    # Puts the best checkpoint and reading back when training ends.
    best = keras_t2t.callbacks.BestOnValidation(
        validation_data=(validation_inputs, targets[validation, 0]),
        labelled_data=(_rows(train_inputs, labelled), truth[labelled]),
    )
    classifier.fit(
        dataset,
        steps_per_epoch=args.eval_every,
        epochs=max(1, args.steps // args.eval_every),
        callbacks=[best],
        verbose=2,
    )

    parent = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(parent, exist_ok=True)
    # Written in a hidden sibling, renamed into place when whole; what
    # runs killed on this host left there goes first.
    keras_t2t.models.model_file.remove_stale_siblings(args.output)
    scratch = keras_t2t.models.model_file.temporary_sibling(args.output)
    os.mkdir(scratch)
    try:
        classifier.save(os.path.join(scratch, "model.keras"))
        keras_t2t.export.export_saved_model(
            classifier,
            os.path.join(scratch, "serving"),
            version=1,
            # Checked against `predict` on validation rows.
            probe=_rows(validation_inputs, slice(0, 8)),
        )
        run = {
            "table": os.path.abspath(args.table),
            "inputs": inputs,
            "input_mode": mode,
            # The (sequence, feature) shape of a row's input, checked on
            # the tables of `predict` and `report`.
            "input_shape": _input_shape(model_inputs, mode),
            "num_labels": int(num_labels),
            "ground_truth": args.ground_truth,
            "teachers": teachers,
            "rescale": args.rescale,
            "ignore_columns": ignored,
            "validation_rows": int(len(validation)),
            "best_step": best.best_step,
            "validation_pr_auc": best.best_value,
            "reading": "combination" if best.best_combination else "task 0",
            "settings": {
                k: v
                for k, v in vars(args).items()
                if k not in ("command", "name")
            },
            "backend": keras.backend.backend(),
        }
        with open(os.path.join(scratch, "run.json"), "w") as f:
            json.dump(run, f, indent=2)
        # Teachers and the student on the held-out validation rows.
        report = keras_t2t.diagnostics.teacher_report(
            _source_table(
                validation_inputs,
                targets[validation],
                teachers,
                args.ground_truth,
            ),
            **options,
            classifier=classifier,
        )
        report.plot(scratch)
        with open(os.path.join(scratch, "report.md"), "w") as f:
            f.write(_fit_report(run, summary))
            f.write("\n## Teachers and the student (validation rows)\n\n")
            f.write(report.to_markdown(per_label=num_labels == 1))
        # Atomic, onto nothing or the empty folder checked above.
        os.replace(scratch, args.output)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    print(
        f"Wrote {args.output}: model.keras, serving/1, run.json, report.md "
        f"(best validation PR-AUC {best.best_value:.3f} at step "
        f"{best.best_step}, "
        f"reading: {run['reading']})."
    )


def _predict(args):
    import pandas as pd

    run = _read_run(args.model)
    frame = _read_table(args.table)
    _check_columns(frame, run["inputs"], args.table)
    inputs = _model_inputs(frame, run["inputs"], run["input_mode"], run)
    classifier = _load_model(args.model)  # After the table's checks.
    scores = classifier.predict(inputs, verbose=0)
    tasks = classifier.predict(inputs, all_tasks=True, verbose=0)
    names = ["ground_truth"] + list(run["teachers"])
    columns = {}
    for label in range(scores.shape[1]):
        suffix = "" if scores.shape[1] == 1 else f"_{label}"
        columns[f"confidence{suffix}"] = scores[:, label]
        for k, name in enumerate(names):
            columns[f"task_{name}{suffix}"] = tasks[:, k, label]
    output = pd.DataFrame(columns, index=frame.index)
    output.to_csv(args.output, index_label="row")
    print(f"Wrote {len(output)} predictions to {args.output}.")


def _report(args):
    run = _read_run(args.model)
    frame = _read_table(args.table)
    report = _teacher_report(run, frame, args.model)
    text = report.to_markdown(per_label=args.per_label)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


# === Helpers ===


COMMANDS.update(fit=_fit, predict=_predict, report=_report)


def _read_table(path):
    from keras_t2t import data

    return data.read_table(path)


def _names(value, flag, required=True):
    names = [name.strip() for name in value.split(",") if name.strip()]
    if required and not names:
        raise UsageError(f"{flag}: name at least one column.")
    return names


def _check_roles(inputs, ground_truth, teachers):
    """A column plays one role: input, ground truth or one teacher."""
    roles = [("--inputs", name) for name in inputs]
    roles += [("--ground-truth", ground_truth)]
    roles += [("--teachers", name) for name in teachers]
    seen = {}
    for flag, name in roles:
        if name in seen:
            where = seen[name]
            also = (
                "twice in " + flag
                if where == flag
                else f"in {where} and {flag}"
            )
            raise UsageError(
                f"column {name!r} is named {also}; a column is an input, "
                "the ground truth or one teacher."
            )
        seen[name] = flag


def _check_columns(frame, names, path):
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise UsageError(
            f"{path} has no column {missing[0]!r}; its columns are "
            f"{list(map(str, frame.columns))}."
        )


def _input_mode(frame, inputs):
    from pandas.api.types import is_numeric_dtype

    numeric = [name for name in inputs if is_numeric_dtype(frame[name])]
    if len(inputs) == 1 and not numeric:
        cells = frame[inputs[0]].dropna()
        if len(cells) and _is_list(cells.iloc[0]):
            return "sequence"
        return "text"
    if len(numeric) != len(inputs):
        text = [name for name in inputs if name not in numeric]
        raise UsageError(
            f"--inputs: {text[0]!r} is not numeric; give one text column, "
            "or numeric feature columns only."
        )
    return "features"


def _hold_out(truth, args):
    """`(validation rows, training rows)`: a share of the labelled rows
    (a row with any label known), as index arrays."""
    labelled = np.flatnonzero(~np.isnan(truth).all(axis=1))
    if len(labelled) < 4:
        raise UsageError(
            f"Column {args.ground_truth!r} has {len(labelled)} labelled "
            "rows; fit needs at least 4 (some for training, some for "
            "validation)."
        )
    rng = np.random.default_rng(args.seed)
    count = max(2, int(round(len(labelled) * args.validation_share)))
    chosen = rng.permutation(labelled)[: min(count, len(labelled) - 2)]
    values = truth[chosen]
    values = values[~np.isnan(values)]
    if not (values == 1).any() or not (values == 0).any():
        raise UsageError(
            f"The {len(chosen)} validation rows held out from "
            f"{args.ground_truth!r} are all {values[0]:g}; label more rows "
            "of both classes."
        )
    is_validation = np.zeros(len(truth), bool)
    is_validation[chosen] = True
    return np.flatnonzero(is_validation), np.flatnonzero(~is_validation)


def _model_inputs(frame, inputs, mode, run=None):
    """The model's inputs for `frame`'s rows; with `run`, checked to have
    the shape the run was fitted on."""
    from keras_t2t import data

    if mode == "text":
        texts = frame[inputs[0]].astype(str).to_numpy().astype(str)
        return {"text": texts}
    if mode == "sequence":
        shape = tuple(run["input_shape"]) if run else None
        cells = frame[inputs[0]].to_numpy()
        return {"features": data.read_sequences(cells, inputs[0], shape)}
    for name in inputs:
        try:
            frame[name].to_numpy("float32")
        except (TypeError, ValueError):
            raise UsageError(
                f"--inputs: column {name!r} must hold numbers, as in the "
                "table the run was fitted on."
            ) from None
    return {"features": frame[inputs].to_numpy("float32")[:, :, None]}


def _input_shape(inputs, mode):
    if mode == "text":
        return None
    return list(inputs["features"].shape[1:])


def _is_list(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _targets(frame, inputs, vocabulary, ground_truth, rescale=None):
    """The `(rows, 1 + N, num_labels)` targets of `frame`, read and checked
    by the library's table reader, as `expand` reads them: a bad cell is
    an error naming its row and column. `rescale` (from `--rescale`) maps
    teachers' scores onto [0, 1]."""
    from keras_t2t import data

    table = dict(inputs)
    for name in (ground_truth, *vocabulary.teachers):
        table[name] = frame[name].to_numpy()
    try:
        return data.read_targets(
            table,
            vocabulary,
            inputs=list(inputs),
            ground_truth=ground_truth,
            rescale=rescale,
        )
    except ValueError as error:
        # The library's advice names its Python argument; here, the flag.
        raise UsageError(
            str(error).replace(
                "pass `rescale=",
                "pass --rescale (TEACHER=sigmoid or TEACHER=LOW:HIGH); in "
                "Python `rescale=",
            )
        ) from None


def _source_table(inputs, targets, teachers, ground_truth):
    """The model inputs with every source's `(rows, num_labels)` column."""
    table = dict(inputs)
    table[ground_truth] = targets[:, 0]
    for k, name in enumerate(teachers, start=1):
        table[name] = targets[:, k]
    return table


def _rows(inputs, keep):
    return {name: value[keep] for name, value in inputs.items()}


def _build_classifier(args, vocabulary, mode, train_inputs, num_labels):
    import keras_hub

    import keras_t2t

    models = keras_t2t.models
    if mode == "text" and args.preset:
        return models.Teacher2TaskClassifier.from_preset(
            args.preset,
            num_labels=num_labels,
            teacher_vocabulary=vocabulary,
            sequence_length=args.sequence_length,
        )
    size = dict(
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        num_teachers=vocabulary.num_teachers,
    )
    preprocessor = None
    if mode == "text":
        proto = keras_t2t.data.train_sentencepiece(
            list(train_inputs["text"]),
            vocabulary_size=args.vocabulary_size,
        )
        tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
        preprocessor = models.Teacher2TaskPreprocessor(
            tokenizer, sequence_length=args.sequence_length
        )
        backbone = models.Teacher2TaskBackbone(
            vocabulary_size=tokenizer.vocabulary_size(), **size
        )
    else:
        # A learned position per feature column, or per vector of a
        # sequence (a patch of an image needs to know where it is).
        length, feature_dim = train_inputs["features"].shape[1:]
        backbone = models.Teacher2TaskBackbone(
            feature_dim=feature_dim, max_sequence_length=length, **size
        )
    return models.Teacher2TaskClassifier(
        backbone,
        num_labels=num_labels,
        teacher_vocabulary=vocabulary,
        preprocessor=preprocessor,
    )


def _read_run(folder):
    path = os.path.join(folder, "run.json")
    if not os.path.isfile(path):
        raise UsageError(
            f"{folder} is not a run folder written by `keras-t2t fit` (no "
            "run.json)."
        )
    with open(path) as f:
        return json.load(f)


def _load_model(folder):
    import keras_t2t

    return keras_t2t.models.load_model(os.path.join(folder, "model.keras"))


def _fit_report(run, summary):
    lines = [
        "# keras-t2t fit",
        "",
        f"Table: `{run['table']}`; inputs {run['inputs']} "
        f"({run['input_mode']}); ground truth `{run['ground_truth']}`; "
        f"teachers {run['teachers']}; backend {run['backend']}.",
        "",
        f"Best validation PR-AUC {run['validation_pr_auc']:.3f} at step "
        f"{run['best_step']} on {run['validation_rows']} held-out labelled "
        f"rows; the ground truth is read from {run['reading']}.",
        "",
        "## The training table",
        "",
        "```",
        str(summary),
        "```",
        "",
    ]
    return "\n".join(lines)


def _teacher_report(run, frame, folder):
    """The diagnostics report of `frame` with the run's model, loaded once
    the table's columns and cells are checked."""
    import keras_t2t

    vocabulary = keras_t2t.TeacherVocabulary(run["teachers"])
    _check_columns(frame, run["teachers"] + [run["ground_truth"]], "TABLE")
    inputs = _model_inputs(frame, run["inputs"], run["input_mode"], run)
    targets = _targets(
        frame, inputs, vocabulary, run["ground_truth"], run.get("rescale")
    )
    if targets.shape[-1] != run.get("num_labels", 1):
        raise UsageError(
            f"The table holds {targets.shape[-1]} label(s) per row; the run "
            f"was fitted on {run.get('num_labels', 1)}."
        )
    return keras_t2t.diagnostics.teacher_report(
        _source_table(inputs, targets, run["teachers"], run["ground_truth"]),
        vocabulary,
        inputs=list(inputs),
        ground_truth=run["ground_truth"],
        classifier=_load_model(folder),
    )


if __name__ == "__main__":
    from keras_t2t_command import main

    sys.exit(main())
