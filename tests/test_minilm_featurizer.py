"""The ONNX Runtime featurizer gives the same features as Rasa's TensorFlow one."""
from typing import List, Text

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import LanguageModelFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import RESPONSE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.minilm_featurizer import MiniLMFeaturizer
from conftest import ROOT

CONFIG = {
    "model_name": "bert",
    "model_weights": str(ROOT / "build" / "minilm"),
    "onnx_model": str(ROOT / "build" / "minilm.onnx"),
}
TEXTS = [
    "what are the symptoms of opiate withdrawal",
    "is it safe to take klonopin (clonazepam) to get through detox??",
    "hi",
    "my son uses k-pins and can't sleep, what should we do about the shakes and sweating",
    "¿dónde puedo encontrar ayuda? 🙏",
]


def featurizer(cls: type) -> LanguageModelFeaturizer:
    context = ExecutionContext(graph_schema=None, node_name=cls.__name__)
    return cls({**cls.get_default_config(), **CONFIG}, context)


def tokenized(texts: List[Text]) -> List[Message]:
    messages = [Message(data={TEXT: text}) for text in texts]
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    return messages


def features(message: Message, attribute: Text = TEXT) -> np.ndarray:
    sequence, sentence = message.get_dense_features(attribute)
    return np.concatenate([sequence.features, sentence.features])


@pytest.fixture(scope="module")
def featurizers():
    return featurizer(LanguageModelFeaturizer), featurizer(MiniLMFeaturizer)


def test_one_message_at_a_time_matches_tensorflow(featurizers):
    stock, ours = featurizers
    for text in TEXTS:
        expected, actual = (features(f.process(tokenized([text]))[0]) for f in (stock, ours))
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, atol=1e-4, err_msg=text)


def test_padded_training_batches_match_tensorflow(featurizers):
    """Training featurizes padded batches, and each distinct text only once (every FAQ
    example carries its answer as `response`); every example still gets its own vectors."""
    answers = [TEXTS[3], TEXTS[0]]

    def training_data() -> TrainingData:
        examples = [
            Message(data={TEXT: text, RESPONSE: answers[index % 2]}) for index, text in enumerate(TEXTS * 2)
        ]
        data = TrainingData(training_examples=examples)
        WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process_training_data(data)
        return data

    batches = []
    for f in featurizers:
        data = f.process_training_data(training_data())
        batches.append([(features(m), features(m, RESPONSE)) for m in data.training_examples])
    assert len(batches[0]) == len(batches[1]) == 2 * len(TEXTS)
    for expected, actual in zip(*batches, strict=True):
        for want, got in zip(expected, actual, strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_component_needs_onnx_runtime_only_not_the_build_time_exporter():
    """Writing the graph is build work (scripts/onnx_export.py); running it needs only
    ONNX Runtime."""
    import subprocess
    import sys

    check = "import sys, components.minilm_featurizer; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
    assert "onnx" not in MiniLMFeaturizer.required_packages()


def test_the_fast_tokenizer_splits_every_training_word_as_rasas(featurizers):
    """Every word of the training data gets the same word pieces from the fast
    tokenizer as from the BertTokenizer Rasa's featurizer uses."""
    stock, ours = featurizers
    examples = [line.strip()[2:] for path in (ROOT / "data" / "nlu").glob("*.yml")
                for line in path.read_text().splitlines() if line.strip().startswith("- ")]
    words = {word for text in examples + TEXTS for word in text.split()}
    assert len(words) > 1000
    differing = [word for word in sorted(words)
                 if stock.tokenizer.encode(word, add_special_tokens=False)
                 != ours.tokenizer.encode(word, add_special_tokens=False)]
    assert differing == []
