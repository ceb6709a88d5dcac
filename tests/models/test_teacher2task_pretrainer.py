import os

import keras
import numpy as np

from keras_t2t.models import Teacher2TaskClassifier
from keras_t2t.models import Teacher2TaskPretrainer
from tests.test_case import TestCase
from tests.test_case import tiny_backbone

# The tests' tiny backbone, one layer and two teachers.
TINY = {"num_teachers": 2, "num_layers": 1}


def counting_tokens(rows=256, length=8, seed=0):
    """Each row counts up from a random start: a hidden token is the one
    after its left neighbour, so masked tokens can be learned."""
    start = np.random.default_rng(seed).integers(0, 10, (rows, 1))
    token_ids = 3 + (start + np.arange(length)) % 10
    padding_mask = np.ones((rows, length), "int32")
    padding_mask[: rows // 2, length - 2 :] = 0
    token_ids = np.where(padding_mask, token_ids, 0).astype("int32")
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def smooth_features(rows=256, length=6, dim=4, seed=0):
    """Each row repeats one random vector: a hidden position is any other."""
    vector = np.random.default_rng(seed).normal(size=(rows, 1, dim))
    return {
        "features": np.repeat(vector, length, axis=1).astype("float32"),
        "padding_mask": np.ones((rows, length), "int32"),
    }


class Teacher2TaskPretrainerTest(TestCase):
    def test_learns_masked_tokens_into_the_backbone(self):
        backbone = tiny_backbone(
            vocabulary_size=13, task_layout="packed", **TINY
        )
        pretrainer = Teacher2TaskPretrainer(
            backbone, mask_rate=0.25, max_predictions=4, seed=0
        )
        pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
        inputs = counting_tokens()
        tokens_before = backbone.task_tokens.get_weights()[0].copy()
        history = pretrainer.fit(inputs, batch_size=32, epochs=12, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.3 * losses[0], losses)

        # The backbone holds the pretrained encoder: a classifier built on
        # it reads the same token embedding; task vectors are untouched.
        classifier = Teacher2TaskClassifier(backbone)
        self.assertIs(
            classifier.backbone.token_embedding.embeddings,
            pretrainer.backbone.token_embedding.embeddings,
        )
        self.assertAllEqual(
            backbone.task_tokens.get_weights()[0], tokens_before
        )

        # Hidden tokens are predicted from their neighbours (chance: 0.1),
        # at the masked positions gathered first.
        outputs = pretrainer.predict(inputs, verbose=0)
        self.assertEqual(outputs["prediction"].shape, (256, 4, 13))
        mask = outputs["mask"].astype(bool)
        self.assertTrue(mask[:, 0].all())
        hidden = np.take_along_axis(
            inputs["token_ids"], outputs["positions"], axis=1
        )
        predicted = outputs["prediction"].argmax(axis=-1)
        accuracy = (predicted[mask] == hidden[mask]).mean()
        self.assertGreater(accuracy, 0.8)

    def test_reconstructs_masked_features_per_example_layout(self):
        backbone = tiny_backbone(feature_dim=4, **TINY)
        pretrainer = Teacher2TaskPretrainer(backbone, mask_rate=0.3, seed=0)
        pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = pretrainer.fit(
            smooth_features(), batch_size=32, epochs=12, verbose=0
        )
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.3 * losses[0], losses)

    def test_loss_counts_masked_positions_only(self):
        backbone = tiny_backbone(feature_dim=3, **TINY)
        pretrainer = Teacher2TaskPretrainer(backbone)
        features = np.random.rand(2, 4, 3).astype("float32")
        mask = np.array([[1, 0, 0, 0], [0, 0, 1, 1]], "int32")
        # Exact where masked, far off elsewhere: no loss.
        prediction = np.where(mask[..., None], features, features + 100.0)
        x = {"features": features, "padding_mask": np.ones((2, 4), "int32")}
        loss = pretrainer.compute_loss(
            x, y_pred={"prediction": prediction, "mask": mask}
        )
        self.assertAllClose(loss, 0.0)
        # One masked entry off by 3 in each of 3 dims, over 3 masked rows.
        prediction[1, 2] += 3.0
        loss = pretrainer.compute_loss(
            x, y_pred={"prediction": prediction, "mask": mask}
        )
        self.assertAllClose(loss, 9.0 / 3, atol=1e-5)

    def test_gathered_positions_are_the_masked_ones(self):
        backbone = tiny_backbone(vocabulary_size=13, **TINY)
        pretrainer = Teacher2TaskPretrainer(
            backbone, mask_rate=0.3, max_predictions=6, seed=2
        )
        token_ids = np.random.randint(3, 13, (64, 10)).astype("int32")
        padding_mask = np.ones((64, 10), "int32")
        padding_mask[:, 8:] = 0
        outputs = pretrainer(
            {"token_ids": token_ids, "padding_mask": padding_mask}
        )
        positions = keras.ops.convert_to_numpy(outputs["positions"])
        mask = keras.ops.convert_to_numpy(outputs["mask"])
        # Masked positions come first, in order, and are real positions;
        # the rest of the slots are unmasked fillers.
        for row in range(64):
            count = int(mask[row].sum())
            self.assertAllEqual(mask[row, :count], np.ones(count))
            self.assertAllEqual(mask[row, count:], np.zeros(6 - count))
            self.assertTrue((positions[row, :count] < 8).all())
            self.assertAllEqual(
                positions[row, :count], np.sort(positions[row, :count])
            )

    def test_loss_with_gathered_positions(self):
        backbone = tiny_backbone(feature_dim=2, **TINY)
        pretrainer = Teacher2TaskPretrainer(backbone, max_predictions=2)
        features = np.arange(12, dtype="float32").reshape(1, 6, 2)
        x = {"features": features, "padding_mask": np.ones((1, 6), "int32")}
        y_pred = {
            "positions": np.array([[4, 1]], "int32"),
            "mask": np.array([[1, 0]], "int32"),
            # Exact at position 4; position 1 is a filler, not scored.
            "prediction": np.array([[[8.0, 9.0], [50.0, 50.0]]], "float32"),
        }
        self.assertAllClose(pretrainer.compute_loss(x, y_pred=y_pred), 0.0)
        y_pred["prediction"][0, 0, 0] = 10.0
        self.assertAllClose(pretrainer.compute_loss(x, y_pred=y_pred), 2.0)

    def test_saving_and_serialization(self):
        backbone = tiny_backbone(
            vocabulary_size=13, task_layout="packed", **TINY
        )
        pretrainer = Teacher2TaskPretrainer(
            backbone, mask_rate=0.2, max_predictions=3, seed=4
        )
        revived = self.run_serialization_test(pretrainer)
        self.assertEqual(
            (revived.mask_rate, revived.max_predictions, revived.seed),
            (0.2, 3, 4),
        )
        pretrainer.compile()
        pretrainer.fit(counting_tokens(rows=32), batch_size=16, verbose=0)
        path = os.path.join(self.get_temp_dir(), "pretrainer.keras")
        pretrainer.save(path)
        revived = keras.saving.load_model(path, safe_mode=True)
        self.assertIsInstance(revived, Teacher2TaskPretrainer)
        self.assertAllClose(
            revived.backbone.get_weights()[0], backbone.get_weights()[0]
        )
        # Compiled again on load: it trains on.
        revived.fit(counting_tokens(rows=32), batch_size=16, verbose=0)

    def test_compile_refuses_a_loss(self):
        backbone = tiny_backbone(feature_dim=3, **TINY)
        pretrainer = Teacher2TaskPretrainer(backbone)
        with self.assertRaisesRegex(ValueError, "own masked loss"):
            pretrainer.compile(loss="mse")
