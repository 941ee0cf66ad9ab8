"""The inbox and the transcript: stored conversations as a trainer reads them, with the
flags of tools/conversations.py plus "reviewed", and every user text masked."""
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from rasa.shared.core.domain import Domain

from tools.conversations import FALLBACK_INTENT, FLAGS, ROOT, Conversation
from tools.privacy import mask, mask_sender
from tools.training_data import NluData

THRESHOLD = 0.6  # as `make review`: intent confidence below this is low_confidence
STATES = ("unreviewed", "reviewed", "all")
FLAG_NAMES = {
    "fallback": "fallback",
    "crisis": "crisis",
    "low_confidence": "low confidence",
    "out_of_scope": "out of scope",
    "not_helpful": '"not helpful"',
}
OUT_OF_SCOPE = "out_of_scope"
# Intents a trainer never labels a message with.
NOT_LABELS = {FALLBACK_INTENT}


@dataclass
class Row:
    """One conversation in the inbox."""

    id: str  # masked: conv-...
    started: datetime
    turns: int
    flags: List[str]
    reviewed_by: Optional[str]
    first: str  # the first user message, masked and cut short

    @property
    def day(self) -> date:
        return self.started.date()


def rows(conversations: Iterable[Conversation], reviewed: Dict[str, str]) -> List[Row]:
    """Every conversation, newest first."""
    found = []
    for conversation in conversations:
        masked = mask_sender(conversation.sender)
        first = mask(conversation.turns[0].text) if conversation.turns else ""
        found.append(Row(masked, datetime.fromtimestamp(conversation.started), len(conversation.turns),
                         conversation.flags(THRESHOLD), reviewed.get(masked),
                         first if len(first) <= 80 else first[:79] + "…"))
    return sorted(found, key=lambda row: row.started, reverse=True)


def in_period(found: List[Row], since: Optional[date], until: Optional[date]) -> List[Row]:
    return [r for r in found if (not since or r.day >= since) and (not until or r.day <= until)]


def select(found: List[Row], flag: Optional[str], state: str) -> List[Row]:
    """The rows with `flag` (any when None) in the reviewed `state` of STATES."""
    return [
        r for r in found
        if (not flag or flag in r.flags)
        and (state == "all" or (state == "reviewed") == (r.reviewed_by is not None))
    ]


def counts(found: List[Row]) -> Dict[str, int]:
    """Conversations per flag, and reviewed or not, among `found`."""
    result = {flag: sum(flag in r.flags for r in found) for flag in FLAGS}
    result["reviewed"] = sum(r.reviewed_by is not None for r in found)
    result["unreviewed"] = len(found) - result["reviewed"]
    return result


def labels(data_dir: Path) -> List[Tuple[str, str]]:
    """What a message can be labelled with: (value, an example to recognise it by),
    "out_of_scope" first, then the intents and FAQ topics the data knows. Read again
    only when a data file changed."""
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(data_dir.rglob("*.yml")))
    return _labels(data_dir, stamp)


@lru_cache(maxsize=4)
def _labels(data_dir: Path, stamp: Tuple) -> List[Tuple[str, str]]:
    data = NluData.load(data_dir, Domain.load(str(ROOT / "domain")))
    example: Dict[str, str] = {}
    for text, intent in data.examples.items():
        example.setdefault(intent, text)
    names = sorted(data.intents - NOT_LABELS - {OUT_OF_SCOPE})
    return [(OUT_OF_SCOPE, "not something the assistant should answer")] + [
        (name, f"e.g. “{example[name]}”" if name in example else "") for name in names
    ]


def parse_day(value: Optional[str]) -> Optional[date]:
    """A YYYY-MM-DD form field as a date; empty or malformed is None (no limit)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
