"""Custom actions. Anything life-critical stays a plain response in the domain, so
that it works even when this action server is down."""
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

# A response's metadata may name the answer a "yes" should show next.
OFFER_KEY = "offer"


def last_bot_response(tracker: Tracker) -> Optional[Text]:
    """Name of the response the assistant last sent, e.g. utter_faq/cold_turkey."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action")
    return None


def offered_response(response_name: Optional[Text], domain: Dict[Text, Any]) -> Optional[Text]:
    """The response that `response_name` offered as its next step, if any."""
    for variation in domain.get("responses", {}).get(response_name or "", []):
        offer = (variation.get("metadata") or {}).get(OFFER_KEY)
        if offer:
            return offer
    return None


class ActionAcceptOffer(Action):
    """Answers a typed "yes" after an answer that ended with an offer."""

    def name(self) -> Text:
        return "action_accept_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        offer = offered_response(last_bot_response(tracker), domain)
        dispatcher.utter_message(response=offer or "utter_capabilities")
        return []
