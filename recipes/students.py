"""Training one student: Teacher2Task, or the same model on other labels."""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

import keras_t2t
from recipes.aggregation import AGGREGATIONS
from recipes.aggregation import CROWD_AGGREGATIONS
from recipes.aggregation import pseudo_labels
from recipes.evaluation import pr_auc

# The Teacher2Task students (each task layout; sparse is the library's
# default) and the same architecture trained on each aggregation's labels
# (ground truth where known) and on the ground truth alone.
STUDENTS = (
    "teacher2task_sparse",
    "teacher2task_packed",
    "teacher2task_per_example",
    *(f"student_{name}" for name in AGGREGATIONS),
    "student_ground_truth",
)
# The library's documented path (`keras_t2t.data.expand`'s defaults).
DOCUMENTED = "teacher2task_sparse"
# The same architecture on crowd-kit's other aggregations of a crowd's hard
# labels (`recipes.crowd_digits`, whose tasks have them), chosen by name.
CROWD_STUDENTS = tuple(
    f"student_{name}" for name in CROWD_AGGREGATIONS if name not in AGGREGATIONS
)

# keras-hub's T5 layers pass `mask=` to attention layers that take no Keras
# mask; the warning is theirs and says nothing about this run.
warnings.filterwarnings("ignore", message=".*T5MultiHeadAttention.*")


# Pretrained encoder weights per (seed, settings): every student of a seed
# starts from the same warm start, computed once.
_WARM_STARTS = {}
# The task vectors: never pretrained, so they keep their initialisation.
_TASK_LAYERS = ("task_tokens", "teacher_embedding")


def warm_start(backbone, task, train, args, seed):
    """Sets `backbone`'s encoder to a masked-input warm start on the
    training rows' inputs (`keras_t2t.models.Teacher2TaskPretrainer`).

    No labels, no teacher scores and no validation or test rows are used.
    A seed's warm start is computed once and shared by its students (the
    encoder layers are the same in both task layouts).
    """
    key = (seed, args.pretrain_steps, args.mask_rate)
    if key not in _WARM_STARTS:
        keras.utils.set_random_seed(seed)
        length = next(iter(task.inputs.values())).shape[1]
        pretrainer = keras_t2t.models.Teacher2TaskPretrainer(
            backbone,
            mask_rate=args.mask_rate,
            max_predictions=math.ceil(2 * args.mask_rate * length),
            seed=seed,
        )
        learning_rate = keras.optimizers.schedules.CosineDecay(
            args.learning_rate, decay_steps=args.pretrain_steps
        )
        pretrainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
        rows = {name: value[train] for name, value in task.inputs.items()}
        dataset = (
            tf.data.Dataset.from_tensor_slices(rows)
            .shuffle(len(train), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(args.batch_size, drop_remainder=True)
        )
        history = pretrainer.fit(
            dataset, steps_per_epoch=args.pretrain_steps, epochs=1, verbose=0
        )
        print(
            f"    warm start: {args.pretrain_steps} masked-input steps, "
            f"loss {history.history['loss'][-1]:.3f}"
        )
        _WARM_STARTS[key] = {
            layer.name: layer.get_weights()
            for layer in backbone.layers
            if layer.weights and layer.name not in _TASK_LAYERS
        }
    for name, weights in _WARM_STARTS[key].items():
        backbone.get_layer(name).set_weights(weights)


def transition_options(args, task, layout):
    """The classifier's teacher-transition arguments from the flags."""
    kind = args.teacher_transition
    if kind == "classes":
        kind = "exclusive" if task.multiclass else "independent"
    if layout == "per_example" or kind == "none":
        return {"teacher_transition": None}
    if args.transition_shrinkage:
        # A shrinkage needs the layer itself; "auto" is the classifier's
        # default kind for the sparse and packed layouts.
        kind = "independent" if kind == "auto" else kind
        kind = keras_t2t.layers.TeacherTransition(
            len(task.teacher_names),
            task.labels.shape[1],
            labels=kind,
            shrinkage=args.transition_shrinkage,
            name="teacher_transition",
        )
    return {
        "teacher_transition": kind,
        "transition_weight": args.transition_weight,
    }


def train_student(method, task, split, args, seed, aggregated=None):
    """Trains one student; returns its test scores, every task's too.

    `method` is `"teacher2task_sparse"` (the library's default layout),
    `"teacher2task_packed"` or `"teacher2task_per_example"` (N+1 tasks
    through `keras_t2t.data.expand`, in that layout),
    `"student_<aggregation>"` (the ground-truth task only, on that
    aggregation's labels where no ground truth is known) or
    `"student_ground_truth"`. Every method trains the same architecture
    for the same number of steps on batches of `args.batch_size`
    examples, keeping the checkpoint with the best validation PR-AUC.

    A Teacher2Task student reads the ground truth as the library does by
    default: task 0, or its learned combination of the teacher tasks
    where that wins on validation.

    Returns `(ground-truth scores, all-task scores or None, the trained
    classifier)`, the scores on the test rows.
    """
    train, val, test, labelled = split
    keras.utils.set_random_seed(seed)
    vocabulary = keras_t2t.TeacherVocabulary(task.teacher_names)
    rows = {name: value[train] for name, value in task.inputs.items()}
    labels = np.where(labelled[:, None], task.labels[train], np.nan)
    # Students on other labels train the ground-truth task alone, one
    # example per row: the per-example layout with teacher id 0.
    layout = "per_example"
    if method.startswith("teacher2task"):
        layout = method[len("teacher2task_") :]
    packed = layout in ("sparse", "packed")
    if method.startswith("teacher2task"):
        table = dict(rows, label=labels)
        # Indexed once: a copy per teacher would hold N copies of the
        # scores (56 GB at N = 1,000).
        train_scores = task.teacher_scores[train]
        for k, name in enumerate(task.teacher_names):
            table[name] = train_scores[:, k]
        dataset = keras_t2t.data.expand(
            table,
            vocabulary,
            inputs=list(task.inputs),
            ground_truth="label",
            task_layout=layout,
            ground_truth_weight=1.0 if packed else args.ground_truth_weight,
            balance=args.balance or None,
            shuffle_buffer=20_000,
            seed=seed,
            batch_size=args.batch_size,
            drop_remainder=True,
            repeat=True,
        )
    else:
        if method == "student_ground_truth":
            targets = labels
        else:
            name = method[len("student_") :]
            targets = pseudo_labels(task, train, labelled, aggregated[name])
        keep = ~np.isnan(targets).all(axis=1)
        x = {name: value[keep] for name, value in rows.items()}
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, targets[keep]))
            .shuffle(int(keep.sum()), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(args.batch_size, drop_remainder=True)
        )
    backbone_args = dict(task.backbone_args)
    if args.position_embedding:
        sequence = task.inputs.get("features", task.inputs.get("token_ids"))
        backbone_args["max_sequence_length"] = sequence.shape[1]
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=vocabulary.num_teachers,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        dropout=args.dropout,
        task_layout=layout,
        ground_truth_token=args.ground_truth_token,
        teacher_shrinkage=args.teacher_shrinkage,
        **backbone_args,
    )
    if args.pretrain_steps:
        warm_start(backbone, task, train, args, seed)
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone,
        num_labels=task.labels.shape[1],
        teacher_vocabulary=vocabulary,
        **transition_options(args, task, layout),
    )
    learning_rate = args.learning_rate
    if args.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            args.learning_rate, decay_steps=args.steps
        )
    loss = keras_t2t.losses.MaskedMultiTaskLoss(
        loss=args.loss,
        normalize=args.task_normalize if layout == "packed" else "entries",
    )
    # With --ema, the weights validated, kept and tested are the moving
    # average of the trained ones (swapped in at each evaluation).
    optimizer = keras.optimizers.Adam(
        learning_rate, use_ema=bool(args.ema), ema_momentum=args.ema or 0.99
    )
    classifier.compile(optimizer=optimizer, loss=loss, metrics=[])
    val_inputs = {name: value[val] for name, value in task.inputs.items()}
    labelled_rows = None
    if method.startswith("teacher2task"):
        labelled_rows = (
            {name: value[labelled] for name, value in rows.items()},
            labels[labelled],
        )
    # The checkpoint (and reading) with the best validation PR-AUC, put
    # back into the classifier when training ends.
    best = keras_t2t.callbacks.BestOnValidation(
        (val_inputs, task.labels[val]),
        labelled_data=labelled_rows,
        metric=pr_auc,
        prefix=f"    {method}: ",
    )
    callbacks = [best]
    if args.ema:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    classifier.fit(
        dataset,
        steps_per_epoch=args.eval_every,
        epochs=max(1, args.steps // args.eval_every),
        callbacks=callbacks,
        verbose=0,
    )
    test_inputs = {name: value[test] for name, value in task.inputs.items()}
    scores = classifier.predict(test_inputs, batch_size=512, verbose=0)
    if not method.startswith("teacher2task"):
        return scores, None, classifier
    tasks = classifier.predict(
        test_inputs, batch_size=512, all_tasks=True, verbose=0
    )
    return scores, tasks, classifier
