"""Crisis from several messages: warning signs that only together call for 988.

"i lost my job and my wife left" and, two messages later, "ive got a bottle of oxys
saved up" are each not a crisis; together they are. The crisis detector marks such
words with a `warning_sign` entity (the `warning_signs` section of
components/crisis_patterns.yml) without escalating. This policy counts the distinct
signs in the writer's last few messages and, once there are enough and the newest
message carries one, runs the same crisis reply and safety question as the `crisis`
rule. It sits above RulePolicy so that an FAQ rule cannot answer instead.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Text

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from components.crisis_detector import CRISIS_INTENT, PATH_ENTITY, WARNING_SIGN_ENTITY

CRISIS_REPLY = "utter_crisis"
SAFETY_QUESTION = "utter_ask_safe"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class WarningSignsPolicy(Policy):
    """Predicts the crisis reply when distinct warning signs add up across messages."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Above RulePolicy (6): on equal confidence, this policy's crisis reply wins.
            "priority": 7,
            # How many of the writer's latest messages are looked at.
            "messages": 3,
            # How many different kinds of warning sign make a crisis.
            "distinct_signs": 2,
        }

    def train(self, training_trackers: List[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn: the signs come from the crisis patterns."""
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        next_action = self._next_action(tracker)
        if next_action is None:
            return self._prediction(probabilities)
        probabilities[domain.index_for_action(next_action)] = 1.0
        events = [SlotSet(PATH_ENTITY, "self")] if next_action == CRISIS_REPLY else []
        return self._prediction(probabilities, events=events)

    def _next_action(self, tracker: DialogueStateTracker) -> Optional[Text]:
        ours = self._last_actions_by_this_policy(tracker)
        if tracker.latest_action_name == CRISIS_REPLY and ours.get(CRISIS_REPLY):
            return SAFETY_QUESTION
        if tracker.latest_action_name == SAFETY_QUESTION and ours.get(SAFETY_QUESTION):
            return ACTION_LISTEN_NAME
        if tracker.latest_action_name == ACTION_LISTEN_NAME and self.signs_add_up(tracker):
            return CRISIS_REPLY
        return None

    def _last_actions_by_this_policy(self, tracker: DialogueStateTracker) -> Dict[Text, bool]:
        """Whether the latest run of each crisis action since the last message was ours."""
        found: Dict[Text, bool] = {}
        for event in reversed(tracker.events):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, ActionExecuted) and event.action_name not in found:
                found[event.action_name] = event.policy == self.__class__.__name__
        return found

    def signs_add_up(self, tracker: DialogueStateTracker) -> bool:
        """Enough distinct signs in the latest messages since the last crisis reply."""
        latest = tracker.latest_message
        if latest is None or latest.intent.get("name") == CRISIS_INTENT or not warning_signs(latest):
            return False
        messages: List[UserUttered] = []
        for event in reversed(tracker.events):
            if isinstance(event, ActionExecuted) and event.action_name == CRISIS_REPLY:
                break
            if isinstance(event, UserUttered):
                messages.append(event)
                if len(messages) == self.config["messages"]:
                    break
        signs: Set[Text] = set()
        for message in messages:
            signs |= warning_signs(message)
        return len(signs) >= self.config["distinct_signs"]

def warning_signs(message: UserUttered) -> Set[Text]:
    return {e.get("value") for e in message.entities or [] if e.get("entity") == WARNING_SIGN_ENTITY}
