"""The `keras-t2t` command's entry point: arguments first, frameworks after.

The parser (every flag, its help and default, its range) lives here, in a
module that imports neither `keras_t2t` nor any framework: `keras-t2t fit
--help` and a bad argument answer at once. A command then imports
`keras_t2t.cli` (and with it Keras and TensorFlow, quietly unless
`TF_CPP_MIN_LOG_LEVEL` is set) and runs. A separate top-level module
because `import keras_t2t` loads every subpackage, so that a `.keras`
file finds its classes.
"""

import argparse
import importlib.metadata
import os
import re
import sys
import warnings

# TensorFlow's C++ log at start-up: errors only, unless the user says.
_QUIET_LOG_LEVEL = "2"


def main(argv=None):
    """Runs `keras-t2t ARGV`; returns the exit code (2 on bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    # keras-hub's T5 layers pass `mask=` to attention layers that take no
    # Keras mask; the warning is theirs and says nothing about the run.
    warnings.filterwarnings("ignore", message=".*T5MultiHeadAttention.*")
    _quiet_start()
    try:
        from keras_t2t import cli

        cli.COMMANDS[args.command](args)
    except ModuleNotFoundError as error:
        from keras_t2t._extras import missing_module_message

        message = missing_module_message(error)
        if message is None:
            raise
        print(f"keras-t2t {args.name}: error: {message}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        message = _with_file_lines(message, getattr(args, "table", None))
        print(f"keras-t2t {args.name}: error: {message}", file=sys.stderr)
        return 2
    return 0


# The line of a text table that holds its data row 0.
_FIRST_DATA_LINE = {".csv": 2, ".jsonl": 1, ".json": 1}


def _with_file_lines(message, path):
    """The library counts a table's rows from 0; a user reads a file by its
    lines. Each "Row N" of a CSV or JSON Lines table gets its line."""
    first = _FIRST_DATA_LINE.get(os.path.splitext(path or "")[1].lower())
    if first is None:
        return message
    return re.sub(
        r"\b([Rr]ows?) (\d+)\b",
        lambda m: f"{m[0]} (line {int(m[2]) + first} of {path})",
        message,
    )


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(
            f"expected {what}, received {text!r}"
        ) from None


def _at_least(minimum):
    """An argparse type: an integer, at least `minimum`."""

    def parse(text):
        value = _number(text, int)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be >= {minimum}, received {text}"
            )
        return value

    parse.__name__ = "int"
    return parse


def _positive_float(text):
    """An argparse type: a finite number above 0."""
    value = _number(text, float)
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, received {text}")
    return value


def _rescale(text):
    """`--rescale`: "name=sigmoid,other=LOW:HIGH" as a dict."""
    rules = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rule = item.partition("=")
        if rule == "sigmoid":
            rules[name] = rule
            continue
        low, _, high = rule.partition(":")
        try:
            rules[name] = [float(low), float(high)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r}: write TEACHER=sigmoid or TEACHER=LOW:HIGH"
            ) from None
        if not rules[name][0] < rules[name][1]:
            raise argparse.ArgumentTypeError(
                f"{item!r}: LOW must be below HIGH"
            )
    return rules


def _share(text):
    """An argparse type: a share strictly between 0 and 1."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 1 (both excluded), received {text}"
        )
    return value


def _add_command(commands, name, run, help, description):
    """A subcommand `name` that runs `keras_t2t.cli.COMMANDS[run]`."""
    parser = commands.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(command=run, name=name)
    return parser


def _add_run_and_table(parser):
    """The positional arguments of a command on a trained run."""
    parser.add_argument("model", help="A run folder written by `fit`.")
    parser.add_argument("table", help="A CSV, Parquet or JSON Lines file.")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none."""

    def _get_help_string(self, action):
        default = action.default
        if action.required or default is None or default is False:
            return action.help
        if default == "":
            return action.help
        return super()._get_help_string(action)


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-t2t",
        description="Teacher2Task: train a student on many teachers' "
        "scores and a few labels, predict, and report on the teachers.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-t2t {_version()}"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    fit = _add_command(
        commands,
        "fit",
        "fit",
        help="Train a student on a table; write a run folder.",
        description="Train a Teacher2Task student on a table of inputs, "
        "teachers' scores and a few ground-truth labels; keep the "
        "checkpoint that scores best on held-out labelled rows and write "
        "the run folder (model.keras, serving/1, run.json, report.md).",
    )
    fit.add_argument("table", help="A CSV, Parquet or JSON Lines file.")
    fit.add_argument(
        "--inputs",
        required=True,
        help="The text column, comma-separated numeric feature columns, or "
        "one column whose cells are lists of vectors (seq, feature_dim).",
    )
    fit.add_argument(
        "--ground-truth",
        required=True,
        help="The label column (0/1, empty where unknown; a list of 0/1 "
        "per row for several labels).",
    )
    fit.add_argument(
        "--teachers",
        required=True,
        help="Comma-separated teacher columns (confidences in [0, 1], a "
        "list per row for several labels).",
    )
    fit.add_argument(
        "--rescale",
        type=_rescale,
        default={},
        help="Teachers whose scores are not confidences in [0, 1], mapped "
        "onto it: TEACHER=sigmoid (logits) or TEACHER=LOW:HIGH (a linear "
        "range), comma-separated.",
    )
    fit.add_argument(
        "--output",
        required=True,
        help="The run folder to write; it must not exist or be empty.",
    )
    fit.add_argument(
        "--ignore-columns",
        default="",
        help="Comma-separated columns of the table that are not used.",
    )
    fit.add_argument(
        "--preset",
        default=None,
        help="A local KerasHub T5 preset folder to start from (text "
        "inputs); without it a small encoder is trained from scratch.",
    )
    fit.add_argument(
        "--steps", type=_at_least(1), default=900, help="Training steps in all."
    )
    fit.add_argument(
        "--eval-every",
        type=_at_least(1),
        default=100,
        help="Steps between two scorings on the validation rows (the best "
        "one is kept).",
    )
    fit.add_argument(
        "--batch-size",
        type=_at_least(1),
        default=64,
        help="Examples (row, teacher) per training step.",
    )
    fit.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=1e-3,
        help="Adam's initial learning rate, decayed to 0 over --steps "
        "(cosine).",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seeds the validation hold-out, shuffling and initial weights.",
    )
    fit.add_argument(
        "--validation-share",
        type=_share,
        default=0.4,
        help="Share of the labelled rows held out for validation.",
    )
    # The model's sizes: whole numbers >= 1.
    for flag, default, text in (
        ("--sequence-length", 64, "Tokens per text (longer texts are cut)."),
        (
            "--vocabulary-size",
            8000,
            "Size of the SentencePiece vocabulary trained on the texts.",
        ),
        ("--num-layers", 2, "Encoder layers."),
        ("--num-heads", 4, "Attention heads per encoder layer."),
        ("--hidden-dim", 128, "Encoder width."),
        ("--intermediate-dim", 512, "Width of the encoder's feed-forward."),
    ):
        fit.add_argument(flag, type=_at_least(1), default=default, help=text)

    predict = _add_command(
        commands,
        "predict",
        "predict",
        help="Score a table with a trained run.",
        description="Score a table's rows with a run written by `fit`; "
        "write a CSV with the ground-truth confidence and every task's "
        "score per row.",
    )
    _add_run_and_table(predict)
    predict.add_argument(
        "--output", required=True, help="The CSV of predictions to write."
    )

    report = _add_command(
        commands,
        "report",
        "report",
        help="Report on the teachers (and the student) of a table.",
        description="Print the markdown report on a table's teachers and "
        "the run's student: coverage, overlap, conflict, PR-AUC and "
        "calibration on the labelled rows.",
    )
    _add_run_and_table(report)
    report.add_argument(
        "--output", default=None, help="Write the markdown here as well."
    )
    report.add_argument(
        "--per-label",
        action="store_true",
        help="One row per teacher and label (several labels).",
    )
    return parser


def _version():
    try:
        return importlib.metadata.version("keras-t2t")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _quiet_start():
    """Imports TensorFlow and Keras without their start-up log.

    Unless the user set `TF_CPP_MIN_LOG_LEVEL` (then their setting rules
    and nothing is hidden), TensorFlow's C++ log is set to errors only,
    absl's Python log to errors, and stderr is closed while TensorFlow's
    libraries load: they log a few lines as they load, before absl logging
    is set up, whatever `TF_CPP_MIN_LOG_LEVEL` says.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _QUIET_LOG_LEVEL
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    from absl import logging

    logging.set_verbosity(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
