"""Loading a saved model, with a check of the `.keras` file first.

Keras reports a `.keras` file that exists but is not a zip archive (empty,
cut short by an interrupted copy, or of another format) as "File not
found". `load_model` checks the file first and names what is wrong with
it; `keras.saving.load_model` is left as it is.
"""

import os
import zipfile

import keras
import tensorflow as tf

# What `model.save("....keras")` always writes.
_MEMBERS = ("config.json", "metadata.json")


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
