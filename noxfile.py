"""Sessions: `nox -s tests` (all backends), `nox -s lint`, `nox -s demo`."""

import os
import time

import nox

BACKENDS = ("tensorflow", "jax", "torch")

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    """Runs the whole suite once per Keras backend, in one environment.

    Pytest arguments pass through: `nox -s tests -- -k loss`. Set
    `KERAS_T2T_BACKENDS=jax,torch` to run a subset of backends.
    """
    session.install("-e", ".[all,dev]")
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
    """The main job: trains a Teacher2Task student and prints PR-AUC."""
    session.install("-e", ".[recipes]")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    session.run(
        "python",
        "recipes/synthetic_teachers.py",
        *session.posargs,
        env={"KERAS_BACKEND": backend},
    )
