"""A failed `fit`, `evaluate` or `predict` leaves the model as it was.

Keras's JAX trainer runs stateless steps: when a call starts it hands the
variables' values to the compiled step and empties the variables (to save
memory), and it puts the values back when the call ends. A call that
raises half-way (a bad batch) never puts them back, so every later call on
the same model fails with "'NoneType' object is not callable". Here the
values are remembered before the call and, when it raises, the trainer's
latest state (what trained before the bad batch) or else the remembered
values are put back before the error goes on. Other backends keep their
variables' values through a failed call; for them this does nothing.
"""

import contextlib

import keras


def _stateful_variables(model):
    variables = list(model.trainable_variables)
    variables += model.non_trainable_variables
    if getattr(model, "optimizer", None) is not None:
        variables += model.optimizer.variables
    variables += model.metrics_variables
    # A variable can appear twice (shared); restore each once.
    unique = {id(v): v for v in variables}
    return list(unique.values())


@contextlib.contextmanager
def restored_on_error(model):
    """Runs the block; if it raises, the model's variables hold values."""
    if keras.config.backend() != "jax":
        yield
        return
    variables = _stateful_variables(model)
    before = [v._value for v in variables]
    try:
        yield
    except BaseException:
        if getattr(model, "_jax_state", None) and not getattr(
            model, "_jax_state_synced", True
        ):
            try:
                model.jax_state_sync()
            except Exception:  # A partial state: fall back below.
                pass
        for variable, value in zip(variables, before, strict=True):
            if variable._value is None and value is not None:
                variable._value = value
        model._jax_state = None
        model._jax_state_synced = True
        raise
