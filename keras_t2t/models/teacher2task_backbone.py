import keras
from keras_hub.layers import PositionEmbedding
from keras_hub.models import Backbone
from keras_hub.models import T5Backbone

# keras-hub exports the whole `T5Backbone` but not its encoder layers nor
# its preset loader; the backbone builds its encoder from them.
from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm
from keras_hub.src.models.t5.t5_transformer_layer import T5TransformerLayer
from keras_hub.src.utils.preset_utils import get_preset_loader

from keras_t2t import _arguments
from keras_t2t.layers.task_tokens import TaskTokens
from keras_t2t.layers.task_tokens import _SlotPositionBias
from keras_t2t.layers.task_tokens import _TaskSlots
from keras_t2t.layers.teacher_embedding import TeacherEmbedding

# The encoder layers of `keras_hub.models.T5Backbone`, by name. Weights are
# carried over from a T5 backbone (or preset) layer by layer with these.
_T5_ENCODER_LAYERS = ("encoder_output_layer_norm",)
TASK_LAYOUTS = ("sparse", "packed", "per_example")
_T5_CONFIG_KEYS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "key_value_dim",
    "dropout",
    "activation",
    "use_gated_activation",
    "layer_norm_epsilon",
    "dtype",
)


@keras.saving.register_keras_serializable(package="keras_t2t")
class Teacher2TaskBackbone(Backbone):
    """A T5 encoder with a teacher (task) token prepended to its input.

    The encoder of `keras_hub.models.T5Backbone` (token embedding, encoder
    layers sharing the relative position bias of the first one, final norm
    and dropout), without any decoder weights, and a `TeacherEmbedding` that
    places a learned vector for the example's teacher id at position 0. Id 0
    is the ground truth, the primary task used at inference; ids 1..N are
    the teachers of a `keras_t2t.TeacherVocabulary`.

    Two input modes:
    - text (`vocabulary_size` set): `token_ids` `(batch, seq)` and
      `padding_mask` `(batch, seq)`.
    - features (`feature_dim` set): `features` `(batch, seq, feature_dim)`
      (image patches, video frames, precomputed embeddings), linearly
      projected to `hidden_dim`, and `padding_mask`.

    Three task layouts (`task_layout`), which differ in how a row meets its
    tasks:
    - `"sparse"` (the default): one example per input, the tasks of its
      sources in one pass. Input `task_ids` `(batch, slots)`: the ids of
      the tasks to read, -1 for an empty slot (`keras_t2t.data.expand`
      gives the ground truth at slot 0, then the teachers that scored
      the row, each batch padded to its longest row). A `TaskTokens`
      layer gathers their vectors and places them in front of the input;
      the attention mask keeps the input's encoding free of them, and
      a position bias shows every slot the input at the distances the
      per-example layout's one token sees, so the output at slot s is
      exactly what task `task_ids[:, s]` alone would read, in any slot
      and beside any other tasks. The cost of a row grows with the
      sources that scored it, not with N. Outputs `sequence_output`
      `(batch, slots + seq, hidden_dim)`, `task_output` `(batch, slots,
      hidden_dim)` and `pooled_output` `(batch, hidden_dim)`, slot 0.
    - `"packed"`: every task in one pass, no `task_ids` input: all N + 1
      task vectors at positions `0..N` (T5's own relative positions, so
      task k sees the input N + 1 - k positions away), the input's
      encoding kept free of them as in `"sparse"`. Outputs as `"sparse"`,
      with `task_output` `(batch, N + 1, hidden_dim)`. Each row costs
      N + 1 extra positions, whoever scored it.
    - `"per_example"`: one example per (input, task). Input `teacher_id`
      `(batch,)`; a `TeacherEmbedding` places that task's vector at
      position 0 and the input attends to it. Outputs `sequence_output`
      `(batch, seq + 1, hidden_dim)` and `pooled_output`, position 0. A
      row scored by k sources costs k encoder passes.

    Build it from config arguments (random weights), from a
    `keras_hub.models.T5Backbone` instance with `from_t5_backbone()`, or
    with `from_preset()` from a KerasHub T5 preset, whose encoder weights
    arrive unchanged.

    Args:
        num_teachers: int. The number of teachers N; task ids are `[0, N]`.
        num_layers: int. The number of encoder layers.
        num_heads: int. The number of attention heads.
        hidden_dim: int. The hidden size of the encoder.
        intermediate_dim: int. The inner size of the feedforward blocks.
        vocabulary_size: int. The token vocabulary size, for text input.
            Defaults to `None`.
        feature_dim: int. The size of each feature vector, for feature
            input. Set exactly one of `vocabulary_size` and `feature_dim`.
            Defaults to `None`.
        key_value_dim: int. The size of each attention head. Defaults to
            `hidden_dim // num_heads`.
        dropout: float. Dropout rate. Defaults to `0.1`.
        activation: str. The feedforward activation. Defaults to `"relu"`.
        use_gated_activation: bool. Whether the feedforward block is gated.
            Defaults to `True`.
        layer_norm_epsilon: float. Defaults to `1e-6`.
        task_layout: str. `"sparse"`, `"packed"` or `"per_example"` (see
            above). Defaults to `"sparse"`.
        embedding_stddev: float. Standard deviation of the zero-mean
            truncated normal that initialises the token and teacher
            embeddings. (KerasHub's `T5Backbone` passes
            `TruncatedNormal(1.0)`, which is mean 1.0 and stddev 0.05, so
            every token starts near the same vector; from scratch that
            trains poorly.) Pretrained weights replace it. Defaults to
            `0.05`.
        max_sequence_length: int. If set, a learned absolute position
            embedding for that many input positions is added to the input
            (before the task tokens), and longer inputs are refused. T5
            knows positions only through the relative attention bias, which
            tells a position how far away another is but not where it is:
            for feature input whose order means a place (image patches,
            video frames) set it to the sequence length. Defaults to `None`
            (no absolute positions, as in T5).
        ground_truth_token: str. How the ground-truth task's vector is
            made: `"free"`, a learned vector like each teacher's, or
            `"mixture"`, a learned mixture of the teacher vectors plus a
            learned offset, so the primary task starts as the teachers'
            average task (see `keras_t2t.layers.TeacherEmbedding`).
            Defaults to `"free"`.
        teacher_shrinkage: float. Pulls each teacher's task vector
            towards the teachers' mean vector with this strength
            (`keras_t2t.layers.TeacherShrinkage`, a penalty in the loss):
            for many teachers with few scores each, choose it on
            validation. Defaults to `0.0` (none).
        dtype: str or `keras.DTypePolicy`. Defaults to `None`.

    Example:
    ```python
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=3,
        vocabulary_size=100,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
    )
    outputs = backbone({
        "task_ids": np.array([[0, 2], [0, -1]]),
        "token_ids": np.ones((2, 5), "int32"),
        "padding_mask": np.ones((2, 5), "int32"),
    })
    outputs["pooled_output"].shape  # (2, 16)
    outputs["task_output"].shape  # (2, 2, 16)

    # From a KerasHub T5 preset directory (or a Kaggle handle, if reachable).
    backbone = keras_t2t.models.Teacher2TaskBackbone.from_preset(
        "./my_t5_preset", num_teachers=3
    )
    ```
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        num_teachers,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        vocabulary_size=None,
        feature_dim=None,
        key_value_dim=None,
        dropout=0.1,
        activation="relu",
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        task_layout="sparse",
        embedding_stddev=0.05,
        max_sequence_length=None,
        ground_truth_token="free",
        teacher_shrinkage=0.0,
        dtype=None,
        **kwargs,
    ):
        _arguments.choice("task_layout", task_layout, TASK_LAYOUTS)
        if (vocabulary_size is None) == (feature_dim is None):
            raise ValueError(
                "Set exactly one of `vocabulary_size` (text input) and "
                f"`feature_dim` (feature input). Received: vocabulary_size="
                f"{vocabulary_size}, feature_dim={feature_dim}"
            )
        for name, value, optional in (
            ("num_teachers", num_teachers, False),
            ("num_layers", num_layers, False),
            ("num_heads", num_heads, False),
            ("hidden_dim", hidden_dim, False),
            ("intermediate_dim", intermediate_dim, False),
            ("vocabulary_size", vocabulary_size, True),
            ("feature_dim", feature_dim, True),
            ("key_value_dim", key_value_dim, True),
            ("max_sequence_length", max_sequence_length, True),
        ):
            _arguments.integer(name, value, 1, allow_none=optional)
        if key_value_dim is None and hidden_dim < num_heads:
            raise ValueError(
                "Each attention head reads hidden_dim // num_heads values: "
                "`hidden_dim` must be >= `num_heads`, or pass "
                f"`key_value_dim`. Received: hidden_dim={hidden_dim}, "
                f"num_heads={num_heads}"
            )
        _arguments.number("dropout", dropout, 0.0, below=1.0)
        _arguments.boolean("use_gated_activation", use_gated_activation)
        _arguments.number("layer_norm_epsilon", layer_norm_epsilon, above=0.0)
        _arguments.number("embedding_stddev", embedding_stddev, above=0.0)
        _arguments.number("teacher_shrinkage", teacher_shrinkage, 0.0)
        embeddings_initializer = keras.initializers.TruncatedNormal(
            stddev=embedding_stddev
        )

        # === Layers ===
        if vocabulary_size is not None:
            self.token_embedding = keras.layers.Embedding(
                input_dim=vocabulary_size,
                output_dim=hidden_dim,
                embeddings_initializer=embeddings_initializer,
                dtype=dtype,
                name="token_embedding",
            )
            self.feature_projection = None
        else:
            self.feature_projection = keras.layers.Dense(
                hidden_dim, dtype=dtype, name="feature_projection"
            )
        self.position_embedding = None
        if max_sequence_length is not None:
            self.position_embedding = PositionEmbedding(
                sequence_length=max_sequence_length,
                initializer=embeddings_initializer,
                dtype=dtype,
                name="position_embedding",
            )
        self.teacher_embedding = self.task_tokens = self.task_slots = None
        # The task's vector: a token before the input (sparse, packed) or
        # added to every position (per-example).
        task_layer_options = dict(
            num_teachers=num_teachers,
            hidden_dim=hidden_dim,
            embeddings_initializer=embeddings_initializer,
            ground_truth_token=ground_truth_token,
            teacher_shrinkage=teacher_shrinkage,
            dtype=dtype,
        )
        if task_layout != "per_example":
            self.task_tokens = TaskTokens(
                **task_layer_options, name="task_tokens"
            )
        else:
            self.teacher_embedding = TeacherEmbedding(
                **task_layer_options, name="teacher_embedding"
            )
        self.encoder_embedding_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_embedding_dropout"
        )
        self.encoder_transformer_layers = [
            T5TransformerLayer(
                is_decoder=False,
                hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim,
                key_value_dim=key_value_dim or hidden_dim // num_heads,
                dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                num_heads=num_heads,
                use_gated_activation=use_gated_activation,
                use_relative_attention_bias=(i == 0),
                dtype=dtype,
                name=f"transformer_encoder_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.slot_position_bias = None
        if task_layout == "sparse":
            self.task_slots = _TaskSlots(dtype=dtype, name="task_slots")
            self.slot_position_bias = _SlotPositionBias(
                self.encoder_transformer_layers[0].self_attention,
                dtype=dtype,
                name="slot_position_bias",
            )
        self.encoder_layer_norm = T5LayerNorm(
            epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="encoder_output_layer_norm",
        )
        self.encoder_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_output_dropout"
        )

        # === Functional Model ===
        if task_layout == "sparse":
            task_input = keras.Input(
                shape=(None,), dtype="int32", name="task_ids"
            )
        else:
            task_input = keras.Input(shape=(), dtype="int32", name="teacher_id")
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        if vocabulary_size is not None:
            sequence_input = keras.Input(
                shape=(None,), dtype="int32", name="token_ids"
            )
            x = self.token_embedding(sequence_input)
        else:
            sequence_input = keras.Input(
                shape=(None, feature_dim), name="features"
            )
            x = self.feature_projection(sequence_input)
        if self.position_embedding is not None:
            x = x + self.position_embedding(x)
        inputs = {
            task_input.name: task_input,
            sequence_input.name: sequence_input,
            "padding_mask": padding_mask_input,
        }
        position_bias = None
        if task_layout == "sparse":
            x, attention_mask = self.task_tokens(
                x, padding_mask_input, task_ids=task_input
            )
            position_bias = self.slot_position_bias(attention_mask, task_input)
        elif task_layout == "packed":
            del inputs["teacher_id"]
            x, attention_mask = self.task_tokens(x, padding_mask_input)
        else:
            x, padding_mask = self.teacher_embedding(
                task_input, x, padding_mask_input
            )
            attention_mask = padding_mask[:, None, :]
        x = self.encode(x, attention_mask, position_bias)
        outputs = {"sequence_output": x, "pooled_output": x[:, 0, :]}
        if task_layout == "sparse":
            outputs["task_output"] = self.task_slots(x, task_input)
        elif task_layout == "packed":
            outputs["task_output"] = x[:, : num_teachers + 1, :]
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.num_teachers = num_teachers
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.vocabulary_size = vocabulary_size
        self.feature_dim = feature_dim
        self.key_value_dim = key_value_dim
        self.dropout = dropout
        self.activation = activation
        self.use_gated_activation = use_gated_activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.task_layout = task_layout
        self.embedding_stddev = embedding_stddev
        self.max_sequence_length = max_sequence_length
        self.ground_truth_token = ground_truth_token
        self.teacher_shrinkage = teacher_shrinkage

    def encode(self, x, attention_mask, position_bias=None):
        """Runs the T5 encoder stack on an embedded sequence.

        Embedding dropout, the transformer layers (the first one's
        relative position bias passed on), the final norm and dropout: what
        the backbone does after placing the task tokens, and what
        `Teacher2TaskPretrainer` runs on masked inputs with the same
        layers.

        Args:
            x: float tensor `(batch, seq, hidden_dim)`.
            attention_mask: int tensor `(batch, 1, seq)` or
                `(batch, seq, seq)`, 1 where a query may attend to a key.
            position_bias: float tensor `(batch, heads, seq, seq)` or
                `None`. The first layer's relative position bias with the
                mask folded in (the sparse layout's); `None` for T5's own.
        """
        x = self.encoder_embedding_dropout(x)
        for transformer_layer in self.encoder_transformer_layers:
            x, position_bias = transformer_layer(
                x,
                attention_mask=attention_mask,
                position_bias=position_bias,
                use_causal_mask=False,
            )
        x = self.encoder_layer_norm(x)
        return self.encoder_dropout(x)

    @property
    def input_mode(self):
        """`"text"` or `"features"`."""
        return "text" if self.vocabulary_size is not None else "features"

    @property
    def packed(self):
        """Whether a row reads several tasks in one pass: `"packed"` or
        `"sparse"` (targets `(batch, tasks, num_labels)`, no `teacher_id`).
        """
        return self.task_layout != "per_example"

    @property
    def sparse(self):
        """Whether each row names its tasks (`task_layout="sparse"`)."""
        return self.task_layout == "sparse"

    @property
    def sequence_input_name(self):
        """`"token_ids"` for text input, `"features"` for feature input."""
        return "token_ids" if self.input_mode == "text" else "features"

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_teachers": self.num_teachers,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "vocabulary_size": self.vocabulary_size,
                "feature_dim": self.feature_dim,
                "key_value_dim": self.key_value_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "use_gated_activation": self.use_gated_activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "task_layout": self.task_layout,
                "embedding_stddev": self.embedding_stddev,
                "max_sequence_length": self.max_sequence_length,
                "ground_truth_token": self.ground_truth_token,
                "teacher_shrinkage": self.teacher_shrinkage,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Files saved before task layouts existed hold no `task_layout`:
        # they are per-example models, whatever today's default.
        config = dict(config)
        config.setdefault("task_layout", "per_example")
        return super().from_config(config)

    @staticmethod
    def get_layout_map(device_mesh, model_parallel_dim_name="model"):
        """A `keras.distribution.LayoutMap` sharding the encoder's weights.

        The large weights are split over the `model_parallel_dim_name` axis
        of `device_mesh`, as in Megatron-LM: the token embedding by
        vocabulary rows; the attention query, key and value kernels and the
        feedforward input and gate kernels by output columns; the attention
        and feedforward output kernels by input rows, so each layer needs
        one reduction. Norms, the relative position bias, the teacher
        embedding and the head are small and replicated. Sharded sizes
        (vocabulary, `num_heads * key_value_dim`, `intermediate_dim`) must
        divide by the size of the model axis.

        Example:
        ```python
        mesh = keras.distribution.DeviceMesh(
            shape=(2, 4),
            axis_names=("batch", "model"),
            devices=keras.distribution.list_devices(),
        )
        layout_map = keras_t2t.models.Teacher2TaskBackbone.get_layout_map(
            mesh
        )
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
        with distribution.scope():
            backbone = keras_t2t.models.Teacher2TaskBackbone(...)
        ```

        Args:
            device_mesh: a `keras.distribution.DeviceMesh`.
            model_parallel_dim_name: str. The mesh axis the weights are
                split over. Defaults to `"model"`.

        Returns:
            A `keras.distribution.LayoutMap`.
        """
        if model_parallel_dim_name not in device_mesh.axis_names:
            raise ValueError(
                f"The device mesh has no axis {model_parallel_dim_name!r}; "
                f"its axes are {list(device_mesh.axis_names)}. Pass "
                "`model_parallel_dim_name`."
            )
        model = model_parallel_dim_name
        layout_map = keras.distribution.LayoutMap(device_mesh)
        layout_map["token_embedding/embeddings"] = (model, None)
        layout_map[".*(query|key|value)_projector/kernel"] = (None, model)
        layout_map[".*(input|gate)_projector/kernel"] = (None, model)
        layout_map[".*output_projector/kernel"] = (model, None)
        return layout_map

    @classmethod
    def from_t5_backbone(cls, t5_backbone, num_teachers, **kwargs):
        """Builds a Teacher2Task backbone from a `T5Backbone`'s encoder.

        The architecture follows the T5 backbone's config and its encoder
        weights (token embedding, encoder layers, final norm) are copied
        unchanged; the decoder is left out. The teacher embedding is new.

        Args:
            t5_backbone: a `keras_hub.models.T5Backbone`.
            num_teachers: int. The number of teachers N.
            **kwargs: overrides of other constructor arguments, e.g.
                `dropout`, or `feature_dim` to reuse a text encoder on
                feature input (the token embedding is then not used).
        """
        if not isinstance(t5_backbone, T5Backbone):
            raise ValueError(
                "`from_t5_backbone` expects a `keras_hub.models.T5Backbone`. "
                f"Received: {type(t5_backbone).__name__}"
            )
        t5_config = t5_backbone.get_config()
        config = {key: t5_config[key] for key in _T5_CONFIG_KEYS}
        config.update(kwargs)
        if config.get("feature_dim") is not None:
            config["vocabulary_size"] = None
        backbone = cls(num_teachers=num_teachers, **config)

        names = [
            f"transformer_encoder_layer_{i}"
            for i in range(t5_config["num_layers"])
        ]
        names += list(_T5_ENCODER_LAYERS)
        if backbone.token_embedding is not None:
            backbone.token_embedding.embeddings.assign(
                t5_backbone.token_embedding.embeddings
            )
        for name in names:
            target = backbone.get_layer(name)
            target.set_weights(t5_backbone.get_layer(name).get_weights())
        return backbone

    @classmethod
    def from_preset(
        cls, preset, num_teachers=None, load_weights=True, **kwargs
    ):
        """Builds a backbone from a KerasHub preset.

        `preset` is a local preset directory (as written by
        `save_to_preset`), or a Kaggle or Hugging Face handle when those
        hosts are reachable. A `T5Backbone` preset gives a new Teacher2Task
        backbone on its encoder with the pretrained weights unchanged and
        `num_teachers` required; a preset saved from a
        `Teacher2TaskBackbone` loads as it was saved.

        Args:
            preset: str. The preset directory or handle.
            num_teachers: int. The number of teachers, for a T5 preset.
            load_weights: bool. Whether to load the preset's weights.
                Defaults to `True`.
            **kwargs: overrides of constructor arguments.
        """
        loader = get_preset_loader(preset)
        preset_cls = loader.check_backbone_class()
        if issubclass(preset_cls, cls):
            if num_teachers is not None:
                kwargs["num_teachers"] = num_teachers
            return loader.load_backbone(preset_cls, load_weights, **kwargs)
        if issubclass(preset_cls, T5Backbone):
            if num_teachers is None:
                raise ValueError(
                    f"Preset {preset!r} holds a T5Backbone: pass "
                    "`num_teachers` to build a Teacher2Task backbone on it."
                )
            t5_backbone = loader.load_backbone(preset_cls, load_weights)
            return cls.from_t5_backbone(t5_backbone, num_teachers, **kwargs)
        raise ValueError(
            f"Preset {preset!r} holds a `{preset_cls.__name__}`; "
            "Teacher2TaskBackbone can be built from T5 presets or from its "
            "own."
        )
