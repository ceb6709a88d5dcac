"""Saving and loading model files, never half-written.

Keras reports a `.keras` file that exists but is not a zip archive (empty,
cut short by an interrupted copy, or of another format) as "File not
found". `load_model` checks the file first and names what is wrong with
it; `keras.saving.load_model` is left as it is.

Keras writes a `.keras` file in place, so a process killed while saving
leaves a truncated file where the previous model was. `save_atomically`
(used by `Teacher2TaskClassifier.save`) writes a temporary sibling and
renames it into place; `temporary_sibling` and `remove_stale_siblings`
serve the exports and the command line's run folder the same way.
"""

import os
import re
import secrets
import shutil
import socket
import zipfile

import keras
import tensorflow as tf

from keras_t2t import _arguments

# What `model.save("....keras")` always writes.
_MEMBERS = ("config.json", "metadata.json")


@_arguments.suggests_keywords
def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads a model saved with `model.save(...)`, checking the file first.

    `keras.saving.load_model` with the same arguments, after
    `check_model_file`: a `.keras` file that is missing, empty, truncated,
    not a zip archive, without the members Keras writes or with a corrupt
    member is a `ValueError` naming the file and the problem, instead of
    Keras's "File not found". Other paths (`.h5` files, model folders,
    `hf://` handles) go to Keras unchecked.

    Args:
        filepath: str or `os.PathLike`. The saved model.
        custom_objects: dict or `None`. Passed to Keras.
        compile: bool. Whether to restore the compile state. Defaults to
            `True`.
        safe_mode: bool. Refuse to deserialize lambdas. Defaults to `True`.

    Example:
    ```python
    classifier.save("student.keras")
    classifier = keras_t2t.models.load_model("student.keras")
    ```
    """
    check_model_file(filepath)
    return keras.saving.load_model(
        filepath,
        custom_objects=custom_objects,
        compile=compile,
        safe_mode=safe_mode,
    )


def check_model_file(filepath):
    """Raises a `ValueError` unless `filepath` is a whole `.keras` archive.

    Only paths ending in `.keras` are checked; others are left to Keras.
    """
    path = os.fspath(filepath)
    if not path.endswith(".keras"):
        return
    if not tf.io.gfile.exists(path):
        raise ValueError(f"No file {path!r}: there is no model to load.")
    if tf.io.gfile.isdir(path):
        raise ValueError(
            f"{path!r} is a folder, not a .keras archive. A preset folder "
            "(written by `save_to_preset`) loads with "
            "`Teacher2TaskClassifier.from_preset`."
        )
    size = tf.io.gfile.stat(path).length
    fix = (
        "Save the model again with `model.save(path)`, or copy the file "
        "again in full."
    )
    if size == 0:
        raise ValueError(
            f"{path!r} is not a valid .keras archive: the file is empty "
            f"(0 bytes). {fix}"
        )
    with tf.io.gfile.GFile(path, "rb") as file:
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile:
            raise ValueError(
                f"{path!r} is not a valid .keras archive: its {size} bytes "
                "are not a zip archive (a file cut short, or one of another "
                f"format). {fix}"
            ) from None
        with archive:
            names = set(archive.namelist())
            missing = [name for name in _MEMBERS if name not in names]
            if missing:
                raise ValueError(
                    f"{path!r} is not a valid .keras archive: it is a zip "
                    f"archive without {missing} (it holds "
                    f"{sorted(names)[:5]}). {fix}"
                )
            try:
                corrupt = archive.testzip()
            except (zipfile.BadZipFile, EOFError, OSError) as error:
                raise ValueError(
                    f"{path!r} is not a valid .keras archive: its members "
                    f"cannot be read ({error}). {fix}"
                ) from None
            if corrupt is not None:
                raise ValueError(
                    f"{path!r} is not a valid .keras archive: its member "
                    f"{corrupt!r} is corrupt (it fails its checksum). {fix}"
                )


# === Atomic writes ===

# Where `save_atomically` writes aside: local files of these formats.
_FILE_FORMATS = (".keras", ".h5", ".hdf5")


def save_atomically(save, filepath, overwrite=True, zipped=None):
    """Calls `save(path, overwrite, zipped)` so `filepath` is never partial.

    A local `.keras` (or `.h5`) file is saved into a temporary sibling
    (same folder, so the rename is atomic) and renamed into place: a
    process killed while saving leaves the previous file whole, and the
    temporary one is removed by the next save into that folder. Other
    destinations (`zipped=False` folders, remote `gs://`, `hf://` paths),
    and an existing file with `overwrite=False` (Keras asks first), go to
    `save` directly.

    Args:
        save: callable. `save(path, overwrite=..., zipped=...)`, e.g.
            `keras.Model.save` bound to a model.
        filepath: str or `os.PathLike`. Where the model is saved.
        overwrite: bool. Replace an existing file. Defaults to `True`.
        zipped: bool or `None`. As in `keras.Model.save`. Defaults to
            `None`.

    Raises:
        OSError: the file could not be written (a full disk, say), naming
            the path; the previous file there is kept.
    """
    if not isinstance(filepath, (str, os.PathLike)) or zipped is False:
        return save(filepath, overwrite=overwrite, zipped=zipped)
    path = os.fspath(filepath)
    if (
        not path.endswith(_FILE_FORMATS)
        or "://" in path
        or (not overwrite and os.path.exists(path))
    ):
        return save(filepath, overwrite=overwrite, zipped=zipped)
    remove_stale_siblings(path)
    temporary = temporary_sibling(path, os.path.splitext(path)[1])
    try:
        save(temporary, overwrite=True, zipped=zipped)
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        _remove(temporary)
        if isinstance(error, OSError):
            raise OSError(
                f"Could not save the model to {path!r} ({error}); the "
                "previous file there, if any, is kept. Make room in that "
                "folder (or pass another path) and save again."
            ) from error
        raise


def temporary_sibling(path, suffix=""):
    """A new name beside `path` to write into before renaming it there.

    In `path`'s folder (a rename within a file system is atomic), hidden,
    named after `path`, this process and this host so that
    `remove_stale_siblings` can tell a dead writer's leftovers, e.g.
    `.keras-t2t-model.keras.123@host.1a2b3c4d.partial.keras`.
    """
    folder, name = os.path.split(os.path.abspath(path))
    token = secrets.token_hex(4)
    return os.path.join(
        folder,
        f"{_PREFIX}{name}.{os.getpid()}@{_host()}.{token}.partial{suffix}",
    )


def remove_stale_siblings(path):
    """Removes what writers killed on this host left beside `path`.

    The `temporary_sibling`s in `path`'s folder whose process is gone;
    those of a live process (a write under way) or of another host are
    kept.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = _SIBLING.fullmatch(entry)
        if (
            match
            and match["host"] == _host()
            and not process_is_alive(int(match["pid"]))
        ):
            _remove(os.path.join(folder, entry))


def process_is_alive(pid):
    """Whether process `pid` of this host is running (or a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Another user's.
    return True


_PREFIX = ".keras-t2t-"
_SIBLING = re.compile(
    re.escape(_PREFIX)
    + r".+\.(?P<pid>\d+)@(?P<host>[\w-]*)\.[0-9a-f]{8}\.partial.*"
)


def _host():
    return re.sub(r"[^\w-]", "_", socket.gethostname())


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass
