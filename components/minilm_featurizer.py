"""Rasa's LanguageModelFeaturizer with the sentence model run by ONNX Runtime.

The stock featurizer runs the BERT-style MiniLM model eagerly in TensorFlow: about
65 ms a message on two cores, most of the assistant's reply time. The same weights,
written as an ONNX graph by scripts/onnx_export.py at build time (`onnx_model`), run in about
5 ms on one thread.
Everything else (special tokens, padding, aligning word pieces to spaCy tokens, the CLS
sentence vector) is inherited unchanged; the word pieces come from the fast tokenizer of
the same vocabulary. tests/test_minilm_featurizer.py checks that the features equal
TensorFlow's.
"""
from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import LanguageModelFeaturizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

BATCH_SIZE = 64  # as Rasa's LanguageModelFeaturizer


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class MiniLMFeaturizer(LanguageModelFeaturizer):
    """Same features as LanguageModelFeaturizer(model_name: bert), from ONNX Runtime."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**LanguageModelFeaturizer.get_default_config(), "onnx_model": "build/minilm.onnx"}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["onnxruntime", "transformers"]

    def _load_model_instance(self) -> None:
        import onnxruntime
        from transformers import BertTokenizerFast

        # The Rust word-piece tokenizer: the same pieces as Rasa's BertTokenizer
        # (tests/test_minilm_featurizer.py compares them), a third of the time.
        self.tokenizer = BertTokenizerFast.from_pretrained(self.model_weights, cache_dir=self.cache_dir)
        self.pad_token_id = self.tokenizer.unk_token_id
        options = onnxruntime.SessionOptions()
        # One thread: the server handles other messages on the other core.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.model = onnxruntime.InferenceSession(
            str(self._config["onnx_model"]), options, providers=["CPUExecutionProvider"]
        )

    def _compute_batch_sequence_features(
        self, batch_attention_mask: np.ndarray, padded_token_ids: List[List[int]]
    ) -> np.ndarray:
        inputs = {
            "input_ids": np.asarray(padded_token_ids, dtype=np.int64),
            "attention_mask": np.asarray(batch_attention_mask, dtype=np.float32),
        }
        return self.model.run(["hidden"], inputs)[0]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """As Rasa's, but each distinct text goes through the model once.

        Every FAQ example carries its whole answer as its `response`, so Rasa encoded
        the 18 answers about 700 times: most of the featurizing time in training.
        Texts of similar length are batched together, so little is padding.
        """
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            by_text: Dict[Text, List[Message]] = {}
            for example in training_data.training_examples:
                if example.get(attribute):
                    by_text.setdefault(example.get(attribute), []).append(example)
            distinct = sorted(
                (examples[0] for examples in by_text.values()),
                key=lambda example: len(example.get(TOKENS_NAMES[attribute], [])),
            )
            for start in range(0, len(distinct), BATCH_SIZE):
                batch = distinct[start : start + BATCH_SIZE]
                for example, doc in zip(batch, self._get_docs_for_batch(batch, attribute), strict=True):
                    for same_text in by_text[example.get(attribute)]:
                        self._set_lm_features(doc, same_text, attribute)
        return training_data
