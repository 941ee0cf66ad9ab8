"""Rasa's DIETClassifier and ResponseSelector, without work that cannot change the result.

With no transformer layers (and no entity recognition or masked language model), the
label scores depend only on the message's sentence-level features; the per-token
(sequence) features never reach them:

    x = [sparse sentence features @ W + b, dense sentence features]
    x = gelu(x @ W_i + b_i) for each hidden layer      (position-wise, no mixing)
    scores = softmax(embed(x) . label_embeddings)

Prediction: Rasa runs this as a TensorFlow graph call, about 6 ms a message here, almost
all of it TensorFlow checking and converting inputs. At load time the weights are read
out of the trained Keras model once, and each message costs a few small matrix
products in NumPy (about 0.2 ms). With diagnostic data requested (`rasa test`), or a
config this does not cover, Rasa's own path runs. tests/test_fast_diet.py checks that
both paths give the same scores.

Training: Rasa pads, multiplies and back-propagates the sequence features of every
token of every example. Here each example keeps only its first token's (the sequence
layer needs one), so the weights that matter see the same inputs at a fraction of
the cost. Config options, saved model and loading are Rasa's own.
"""
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse
import scipy.special
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.constants import (
    COSINE,
    ENTITY_RECOGNITION,
    FEATURIZERS,
    MASKED_LM,
    NUM_TRANSFORMER_LAYERS,
    SOFTMAX,
)

logger = logging.getLogger(__name__)

Dense = Tuple[np.ndarray, np.ndarray]  # kernel, bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, as tf.nn.gelu computes it by default."""
    return 0.5 * x * (1.0 + scipy.special.erf(x / np.float32(np.sqrt(2.0))))


def _weights(layer: Any) -> Dense:
    kernel = layer.kernel.numpy()
    mask = getattr(layer, "kernel_mask", None)  # RandomlyConnectedDense's fixed zeros
    if mask is not None:
        kernel = kernel * mask.numpy()
    return kernel, layer.bias.numpy()


@dataclass
class SentenceScorer:
    """The part of a trained DIET model that scores labels for one message."""

    sparse_to_dense: Optional[Dense]  # for the sparse sentence features, if any
    hidden: List[Dense]
    embed: Dense
    label_embeddings: np.ndarray  # (labels, embedding dimension)
    cosine: bool
    softmax: bool
    featurizers: List[Text]

    @classmethod
    def from_model(cls, model: Any, featurizers: List[Text]) -> "SentenceScorer":
        """Reads the weights out of Rasa's Keras model. This touches private attributes
        of Rasa 3.6's model classes: another layout raises, and the caller falls back."""
        sequence_layer = model._tf_layers["sequence_layer.text"]
        combining = sequence_layer._tf_layers["feature_combining"]._tf_layers
        sentence = combining["sparse_dense.sentence"]._tf_layers.get("sparse_to_dense")
        hidden = [layer for layer in sequence_layer._tf_layers["ffnn"]._ffn_layers if hasattr(layer, "kernel")]
        model._training = False
        _, label_embeddings = model._create_all_labels()
        loss = model._tf_layers["loss.label"]
        return cls(
            sparse_to_dense=_weights(sentence) if sentence is not None else None,
            hidden=[_weights(layer) for layer in hidden],
            embed=_weights(model._tf_layers["embed.text"]._dense),
            label_embeddings=label_embeddings.numpy(),
            cosine=loss.similarity_type == COSINE,
            softmax=loss.model_confidence == SOFTMAX,
            featurizers=featurizers,
        )

    def scores(self, message: Message) -> Optional[np.ndarray]:
        """Label confidences, shaped (1, labels) like Rasa's `i_scores`; None if the
        message lacks the sentence features the model was trained on."""
        _, sparse = message.get_sparse_features(TEXT, self.featurizers)
        _, dense = message.get_dense_features(TEXT, self.featurizers)
        if (sparse is None) != (self.sparse_to_dense is None) or dense is None or dense.features.shape[0] != 1:
            return None
        parts = []
        if sparse is not None:
            kernel, bias = self.sparse_to_dense
            rows = sparse.features.tocoo()  # one row: the sentence
            parts.append((rows.data.astype(np.float32) @ kernel[rows.col])[np.newaxis] + bias)
        parts.append(np.asarray(dense.features, np.float32))
        x = np.concatenate(parts, axis=-1)
        for kernel, bias in self.hidden:
            x = _gelu(x @ kernel + bias)
        x = x @ self.embed[0] + self.embed[1]
        labels = self.label_embeddings
        if self.cosine:
            x = x / np.linalg.norm(x, axis=-1, keepdims=True)
            labels = labels / np.linalg.norm(labels, axis=-1, keepdims=True)
        similarities = x @ labels.T
        return scipy.special.softmax(similarities, axis=-1) if self.softmax else similarities


def _first_token_only(message: Message) -> Message:
    """The message with its text's sequence features cut to the first token."""
    features = [
        Features(
            scipy.sparse.coo_matrix(f.features.tocsr()[:1]) if f.is_sparse() else f.features[:1],
            f.type, f.attribute, f.origin,
        )
        if f.attribute == TEXT and f.type == FEATURE_TYPE_SEQUENCE
        else f
        for f in message.features
    ]
    return Message(data=message.data, output_properties=message.output_properties, time=message.time, features=features)


class _NumPyPrediction:
    """Mixin for DIETClassifier and ResponseSelector: sentence features only, where the
    config lets nothing else reach the labels (see the module docstring)."""

    _scorer: Optional[SentenceScorer] = None
    _scorer_failed = False

    def _sentence_only(self) -> bool:
        """Whether the config lets only sentence features reach the labels."""
        config = self.component_config
        return (
            config[NUM_TRANSFORMER_LAYERS] == 0
            and not config.get(ENTITY_RECOGNITION, False)
            and not config.get(MASKED_LM, False)
        )

    @classmethod
    def load(cls, *args: Any, **kwargs: Any) -> Any:
        """Rasa's load, then the weights read out, so the first message is not slower."""
        component = super().load(*args, **kwargs)
        component._scorer_or_none()
        return component

    def _scorer_or_none(self) -> Optional[SentenceScorer]:
        """The NumPy scorer; None (Rasa's own prediction) where the config needs more than
        sentence features, or once the model's layout was not the one expected."""
        if self._scorer is None and not self._scorer_failed and self.model is not None and self._sentence_only():
            try:
                self._scorer = SentenceScorer.from_model(self.model, self.component_config[FEATURIZERS])
            except Exception as error:
                self._scorer_failed = True
                logger.warning("%s predicts with Rasa's own code: its model's layout is not the one expected (%s: %s).",
                               type(self).__name__, type(error).__name__, error)
        return self._scorer

    def _create_model_data(
        self, training_data: List[Message], label_id_dict: Optional[Dict[Text, int]] = None,
        label_attribute: Optional[Text] = None, training: bool = True,
    ) -> Any:
        if training and self._sentence_only():
            training_data = [_first_token_only(message) for message in training_data]
        return super()._create_model_data(training_data, label_id_dict, label_attribute, training)

    def _predict(self, message: Message) -> Optional[Dict[Text, Any]]:
        scorer = self._scorer_or_none()
        if scorer is None or self._execution_context.should_add_diagnostic_data:
            return super()._predict(message)
        scores = scorer.scores(message)
        return super()._predict(message) if scores is None else {"i_scores": scores}


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=True,
)
class FastDIETClassifier(_NumPyPrediction, DIETClassifier):
    """DIETClassifier (same config and model), predicting in NumPy and training on what counts."""


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FastResponseSelector(_NumPyPrediction, ResponseSelector):
    """ResponseSelector (same config and model), predicting in NumPy and training on what counts."""

    def _sentence_only(self) -> bool:
        # With `use_text_as_label` the model reads another token position (DIET2DIET).
        return super()._sentence_only() and not self.use_text_as_label
