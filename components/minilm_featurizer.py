"""Rasa's LanguageModelFeaturizer with the sentence model run in NumPy instead of TensorFlow.

The stock featurizer runs the BERT-style MiniLM model eagerly in TensorFlow, about
65 ms a message on two cores, which was most of the assistant's reply time. The
model is small (6 layers, 384 wide), so the same weights run as a few NumPy matrix
products in about 2 ms. Everything else (word-piece tokenization, special tokens,
padding, aligning word pieces to spaCy tokens, the CLS sentence vector) is inherited
unchanged, and tests/test_minilm_featurizer.py checks that the features equal the
TensorFlow model's.
"""
from pathlib import Path
from typing import Dict, List, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import LanguageModelFeaturizer
from scipy.special import erf

WEIGHTS_FILE = "model.safetensors"


class MiniLM:
    """A BERT encoder forward pass (inference only) over safetensors weights."""

    def __init__(self, weights_dir: Text) -> None:
        import json

        from safetensors.numpy import load_file

        config = json.loads((Path(weights_dir) / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w: Dict[Text, np.ndarray] = load_file(str(Path(weights_dir) / WEIGHTS_FILE))
        # PyTorch stores dense weights as (out, in); transpose once for x @ W.
        for name, value in self.w.items():
            if name.endswith("weight") and value.ndim == 2 and "embeddings" not in name:
                self.w[name] = np.ascontiguousarray(value.T)

    def _dense(self, x: np.ndarray, name: Text) -> np.ndarray:
        # One 2-D matrix product for the whole batch: NumPy would loop over a 3-D one.
        weight = self.w[f"{name}.weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _layer_norm(self, x: np.ndarray, name: Text) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        normed = (x - mean) / np.sqrt(variance + self.eps)
        return normed * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _attention(self, x: np.ndarray, mask_bias: np.ndarray, name: Text) -> np.ndarray:
        batch, length, width = x.shape
        head_width = width // self.heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, self.heads, head_width).transpose(0, 2, 1, 3)

        query, key, value = (
            split(self._dense(x, f"{name}.self.{part}")) for part in ("query", "key", "value")
        )
        scores = query @ key.transpose(0, 1, 3, 2) / np.sqrt(head_width) + mask_bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities = scores / scores.sum(-1, keepdims=True)
        context = (probabilities @ value).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self._layer_norm(x + self._dense(context, f"{name}.output.dense"), f"{name}.output.LayerNorm")

    def __call__(self, token_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Last hidden states, shape (batch, length, 384)."""
        length = token_ids.shape[1]
        x = (
            self.w["embeddings.word_embeddings.weight"][token_ids]
            + self.w["embeddings.position_embeddings.weight"][:length]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(x, "embeddings.LayerNorm")
        # Padding gets the same large negative bias as the TensorFlow model.
        mask_bias = ((1.0 - attention_mask) * -10000.0)[:, None, None, :].astype(np.float32)
        for index in range(self.layers):
            name = f"encoder.layer.{index}"
            x = self._attention(x, mask_bias, f"{name}.attention")
            hidden = self._dense(x, f"{name}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))  # exact GELU
            x = self._layer_norm(x + self._dense(hidden, f"{name}.output.dense"), f"{name}.output.LayerNorm")
        return x.astype(np.float32)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class MiniLMFeaturizer(LanguageModelFeaturizer):
    """Same features as LanguageModelFeaturizer(model_name: bert), computed in NumPy."""

    def _load_model_instance(self) -> None:
        from rasa.nlu.utils.hugging_face.registry import model_tokenizer_dict

        self.tokenizer = model_tokenizer_dict[self.model_name].from_pretrained(
            self.model_weights, cache_dir=self.cache_dir
        )
        self.model = MiniLM(self.model_weights)
        self.pad_token_id = self.tokenizer.unk_token_id

    def _compute_batch_sequence_features(
        self, batch_attention_mask: np.ndarray, padded_token_ids: List[List[int]]
    ) -> np.ndarray:
        return self.model(np.asarray(padded_token_ids), batch_attention_mask)
