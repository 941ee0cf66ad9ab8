"""FastDIETClassifier and FastResponseSelector: NumPy predictions equal Rasa's own.

Every message goes through the trained model twice: the NumPy path the assistant
uses, and DIETClassifier._predict, Rasa's TensorFlow path, on the same component.
"""
from typing import Any, List

import numpy as np
import pytest
import scipy.sparse
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from components.fast_diet import FastDIETClassifier, FastResponseSelector, _first_token_only
from tools import heldout

ODD_INPUTS = ["", "?!", "🙏🙏", "k", "¿dónde puedo encontrar ayuda?", "withdrawal " * 300]


def components(bot) -> List[Any]:
    nodes = bot.agent.processor.graph_runner._instantiated_nodes.values()
    fast = (FastDIETClassifier, FastResponseSelector)
    return [node._component for node in nodes if isinstance(node._component, fast)]


@pytest.fixture
def both_paths(bot, monkeypatch):
    """Records (component, NumPy scores, TensorFlow scores, message) for each call."""
    found = components(bot)
    assert {type(c) for c in found} == {FastDIETClassifier, FastResponseSelector}
    seen = []
    for component in found:
        fast = component._predict

        def record(message, component=component, fast=fast):
            ours, rasa = fast(message), DIETClassifier._predict(component, message)
            seen.append((component, ours, rasa, message))
            return ours

        monkeypatch.setattr(component, "_predict", record)
    return seen


def test_scores_equal_rasas_tensorflow_path(bot, both_paths):
    texts = [text for phrasings in heldout.topics().values() for text in phrasings]
    texts += heldout.crisis_messages()[:40] + heldout.non_crisis_messages()[:40] + ODD_INPUTS
    for text in texts:
        bot.parse(text)
    compared = [(ours, rasa) for _, ours, rasa, _ in both_paths if rasa is not None]
    assert len(compared) >= 2 * len(texts) - 2 * len(ODD_INPUTS)
    for ours, rasa in compared:
        # Both paths compute in float32, summing in different orders; with similarities
        # spread over 80 units (confidences from 0.6 down to 1e-36) a few units in the last
        # place of a similarity move a confidence near 0.5 by up to a few 1e-5.
        np.testing.assert_allclose(ours["i_scores"], rasa["i_scores"], rtol=1e-4, atol=1e-5)
        assert np.argmax(ours["i_scores"]) == np.argmax(rasa["i_scores"])
        # The labels in the same order, down to those with any weight.
        weighty = int((rasa["i_scores"][0] > 1e-6).sum())
        order = [list(np.argsort(-scores["i_scores"][0])[:weighty]) for scores in (ours, rasa)]
        assert order[0] == order[1]
    # The NumPy path really ran: each component built its scorer.
    assert all(component._scorer is not None for component, _, _, _ in both_paths)


def test_rasas_path_runs_when_diagnostic_data_is_asked_for(bot, both_paths):
    """`rasa test` asks for diagnostic data, which only the TensorFlow path gives."""
    component = components(bot)[0]
    context = component._execution_context
    context.should_add_diagnostic_data = True
    try:
        bot.parse("what are the symptoms of opiate withdrawal")
    finally:
        context.should_add_diagnostic_data = False
    ours = [o for c, o, _, _ in both_paths if c is component]
    assert ours and "diagnostic_data" in ours[0]


def _array(features: Any) -> np.ndarray:
    return features.toarray() if scipy.sparse.issparse(features) else np.asarray(features)


def test_training_sees_the_first_token_only_and_the_whole_sentence(bot, both_paths):
    """Training cuts the per-token features (they cannot reach the labels); the
    sentence features, the text and the original message stay as they were."""
    bot.parse("my son is in withdrawal and cannot sleep")
    message = both_paths[0][3]
    cut = _first_token_only(message)
    assert cut.get(TEXT) == message.get(TEXT)
    for features_of in (Message.get_sparse_features, Message.get_dense_features):
        (sequence, sentence), (cut_sequence, cut_sentence) = features_of(message, TEXT), features_of(cut, TEXT)
        assert sequence.features.shape[0] > 1 and cut_sequence.features.shape[0] == 1
        np.testing.assert_array_equal(_array(cut_sequence.features), _array(sequence.features)[:1])
        np.testing.assert_array_equal(_array(cut_sentence.features), _array(sentence.features))


def test_an_unexpected_model_layout_falls_back_to_rasas_prediction_with_one_warning(bot, monkeypatch, caplog):
    """fast_diet reads private attributes of Rasa's model: if a Rasa version lays them out
    differently, the assistant still answers, with Rasa's own (slower) prediction."""
    component = next(c for c in components(bot) if isinstance(c, FastDIETClassifier))
    text = "what are the symptoms of opiate withdrawal"
    expected = bot.parse(text)["intent"]

    def changed_layout(*_args):
        raise KeyError("sequence_layer.text")

    monkeypatch.setattr(component, "_scorer", None)
    monkeypatch.setattr(component, "_scorer_failed", False)
    monkeypatch.setattr("components.fast_diet.SentenceScorer.from_model", changed_layout)
    with caplog.at_level("WARNING", logger="components.fast_diet"):
        parsed = [bot.parse(text)["intent"] for _ in range(3)]
    assert [p["name"] for p in parsed] == [expected["name"]] * 3
    assert all(abs(p["confidence"] - expected["confidence"]) < 1e-5 for p in parsed)
    warnings = [r for r in caplog.records if "layout is not the one expected" in r.getMessage()]
    assert len(warnings) == 1 and component._scorer is None
