"""How the assistant is doing over a period, counted from the tracker store's
conversations, and drawn as inline SVG bar charts (no script, nothing fetched)."""
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Dict, Iterable, List, Tuple

from tools.conversations import (
    ANSWER_ACTIONS, CRISIS_ACTION, CRISIS_INTENT, FALLBACK_ACTIONS, FALLBACK_INTENT, OUT_OF_SCOPE_ACTION,
    OUT_OF_SCOPE_INTENT, Conversation,
)


@dataclass
class Figures:
    """The numbers behind the charts; every rate is a share of user messages or answers."""

    days: List[date]
    conversations: Dict[date, int] = field(default_factory=dict)
    messages: int = 0
    fallbacks: int = 0
    out_of_scope: int = 0
    crisis: Dict[date, int] = field(default_factory=dict)
    topics: Counter = field(default_factory=Counter)
    answers: int = 0
    not_helpful: int = 0

    @staticmethod
    def share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.share(self.fallbacks, self.messages)

    @property
    def out_of_scope_rate(self) -> float:
        return self.share(self.out_of_scope, self.messages)

    @property
    def not_helpful_rate(self) -> float:
        return self.share(self.not_helpful, self.answers)


def figures(conversations: Iterable[Conversation], since: date, until: date) -> Figures:
    """Counts the conversations that started in [since, until] (local days).

    A crisis escalation is a user message answered with the crisis reply (or given the
    crisis intent); "not helpful" is a "no" right after an FAQ or medication answer, as
    the inbox's flag.
    """
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    result = Figures(days, {d: 0 for d in days}, crisis={d: 0 for d in days})
    for conversation in conversations:
        if not since <= conversation.day <= until:
            continue
        result.conversations[conversation.day] += 1
        for turn in conversation.turns:
            day = datetime.fromtimestamp(turn.timestamp).date()
            result.messages += 1
            result.fallbacks += turn.intent == FALLBACK_INTENT or bool(set(turn.actions) & FALLBACK_ACTIONS)
            result.out_of_scope += turn.intent == OUT_OF_SCOPE_INTENT or OUT_OF_SCOPE_ACTION in turn.actions
            if turn.intent == CRISIS_INTENT or CRISIS_ACTION in turn.actions:
                result.crisis[day] = result.crisis.get(day, 0) + 1
            if set(turn.actions) & ANSWER_ACTIONS:
                result.answers += 1
                result.topics[turn.response_key or turn.intent] += 1
            if turn.intent == "deny" and turn.previous_action in ANSWER_ACTIONS:
                result.not_helpful += 1
    return result


def columns(title: str, values: List[Tuple[str, float]], unit: str = "") -> str:
    """A vertical bar chart (one bar per day), labelled for screen readers by `title`."""
    width, height, top = 640, 180, max([v for _, v in values] + [1])
    step = min(width / max(len(values), 1), 48)
    bars = []
    for i, (label, value) in enumerate(values):
        h = (height - 20) * value / top
        x = i * step
        bars.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{height - 20 - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: {value:g}{unit}</title></rect>"
        )
    first, last = (values[0][0], values[-1][0]) if values else ("", "")
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<line x1="0" y1="{height - 20}" x2="{width}" y2="{height - 20}" class="axis"/>{"".join(bars)}'
        f'<text x="0" y="{height - 4}">{escape(first)}</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{escape(last)}</text>'
        f'<text x="0" y="12">max {top:g}{unit}</text></svg>'
    )


def rows(title: str, values: List[Tuple[str, float]], unit: str = "", top: float = 0) -> str:
    """A horizontal bar chart (topics, shares), one labelled bar per row; the longest bar
    stands for `top` (the largest value when 0)."""
    width, bar, label_width = 640, 22, 260
    top = top or max([v for _, v in values] + [1])
    height = bar * max(len(values), 1) + 4
    parts = []
    for i, (label, value) in enumerate(values):
        y, w = i * bar + 2, (width - label_width - 60) * value / top
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{bar - 6}">'
            f"<title>{escape(label)}: {value:g}{unit}</title></rect>"
            f'<text x="{label_width + w + 6:.1f}" y="{y + 15}">{value:g}{unit}</text>'
        )
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'{"".join(parts)}</svg>')
