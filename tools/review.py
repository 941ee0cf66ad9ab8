"""Review stored conversations: list, read, export for labelling, import labels, turn
into test stories, purge. Run `python -m tools.review --help` (or `make review ARGS=...`).

Conversations are read through Rasa's own tracker store, built from an endpoints file
exactly as the Rasa server builds it. User text is masked (tools/privacy.py) wherever it
leaves the store, and so is the sender id, which can be a phone number (Twilio): the
commands print and write `conv-...` ids instead, and `show` and `story` take them back.
"""
import argparse
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, List, Optional, Tuple

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

import yaml  # noqa: E402
from rasa.shared.core.events import UserUttered  # noqa: E402

from tools.conversations import (  # noqa: E402
    FLAGS, ROOT, Conversation, ReviewError, load_conversations, load_tracker, open_store,
    purge, summarise,
)
from tools.privacy import mask, mask_sender  # noqa: E402

DEFAULT_THRESHOLD = 0.6
EXPORT_HEADER = """\
# Messages the assistant did not understand well, for a trainer to label.
# Fill `intent` with an intent of the domain (e.g. greet) or faq/<topic>, leave it ""
# to skip an item, then run: python -m tools.review import THIS_FILE
"""


def cmd_list(args: argparse.Namespace) -> int:
    """One line per conversation: masked sender, first message date, user turns, flags."""
    shown = 0
    for conversation in load_conversations(open_store(args.endpoints)):
        flags = conversation.flags(args.threshold)
        if args.since and conversation.day < args.since:
            continue
        if args.until and conversation.day > args.until:
            continue
        if not set(args.flag or []) <= set(flags):
            continue
        print(f"{mask_sender(conversation.sender)}\t{conversation.day}\t{_turns(conversation)}"
              f"\t{','.join(flags) or '-'}")
        shown += 1
    if not shown:
        print("no conversations match", file=sys.stderr)
    return 0


def transcript(conversation: Conversation, threshold: float) -> str:
    """The conversation as a reviewer reads it.

    User text is masked; bot text is not, as it comes from the domain's responses.
    """
    lines = [
        f"conversation {mask_sender(conversation.sender)}, started {_when(conversation.started)}, "
        f"{_turns(conversation)}, flags: {', '.join(conversation.flags(threshold)) or '-'}"
    ]
    for turn in conversation.turns:
        topic = f" -> {turn.response_key}" if turn.response_key else ""
        if turn.intent == "nlu_fallback":
            topic = f", best guess {turn.best_guess[0]} ({turn.best_guess[1]:.2f})"
        lines += [
            "",
            f"[{_when(turn.timestamp)}] user: {mask(turn.text)}",
            f"    intent: {turn.intent} ({turn.confidence:.2f}){topic}",
        ]
        lines += [f"    bot: {reply}" for reply in turn.replies]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    print(transcript(summarise(load_tracker(open_store(args.endpoints), args.sender)), args.threshold))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Low-confidence and fallback messages, masked, once each, for labelling."""
    items, seen = [], set()
    for conversation in load_conversations(open_store(args.endpoints)):
        for turn in conversation.turns:
            text = mask(turn.text)
            if turn.unsure(args.threshold) and text.strip() and text not in seen:
                seen.add(text)
                predicted, confidence = turn.best_guess
                items.append({"sender": mask_sender(conversation.sender), "text": text, "predicted": predicted,
                              "confidence": round(confidence, 3), "intent": ""})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(EXPORT_HEADER + yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=1000),
                        encoding="utf-8")
    print(f"wrote {len(items)} messages to review to {args.out}")
    return 0


@dataclass
class Imported:
    """What an import did: the examples added (text, intent, file), those refused (text,
    intent, why), and `rasa data validate` (None when nothing was added, so not run)."""

    added: List[Tuple[str, str, Path]] = field(default_factory=list)
    refused: List[Tuple[str, str, str]] = field(default_factory=list)
    validate_exit: Optional[int] = None
    validate_output: str = ""

    @property
    def valid(self) -> bool:
        return self.validate_exit in (None, 0)


def import_items(items: Any, data_dir: Path, source: str = "the labels") -> Imported:
    """Adds labelled items ({"text", "intent"}) to the NLU data in `data_dir`, refusing
    unknown intents and duplicates, then validates the data. The one way labels get into
    the training data: `import` below and the workbench's corrections both come here."""
    from rasa.shared.core.domain import Domain

    from tools.training_data import NluData, validate

    if not isinstance(items, list):
        raise ReviewError(f"{source} should hold a list of items")
    data = NluData.load(data_dir, Domain.load(str(ROOT / "domain")))
    result = Imported()
    for item in items:
        if not isinstance(item, dict):
            raise ReviewError(f"{source}: every item should be a mapping, not {item!r}")
        intent, text = str(item.get("intent") or "").strip(), str(item.get("text") or "").strip()
        if not intent:
            continue
        reason = data.refusal(text, intent)
        if reason:
            result.refused.append((text, intent, reason))
        else:
            result.added.append((text, intent, data.add(text, intent)))
    if result.added:
        validation = validate(data_dir)
        result.validate_exit = validation.returncode
        result.validate_output = "\n".join((validation.stdout + validation.stderr).splitlines()[-40:])
    return result


def cmd_import(args: argparse.Namespace) -> int:
    """Adds labelled items to the training data, refusing unknown intents and duplicates."""
    items = yaml.safe_load(args.file.read_text(encoding="utf-8")) or []
    result = import_items(items, args.data_dir, str(args.file))
    for text, intent, reason in result.refused:
        print(f"refused: {text!r} -> {intent}: {reason}")
    for text, intent, path in result.added:
        print(f"added: {text!r} -> {intent} in {relative(path)}")
    print(f"{len(result.added)} added, {len(result.refused)} refused")
    if result.validate_exit is None:
        return 0
    if not result.valid:
        print(f"rasa data validate FAILED (exit {result.validate_exit}):")
        print(result.validate_output)
        return 1
    print("rasa data validate passed")
    return 0


@dataclass
class Story:
    """A test story written: its name (the masked sender id), file, text, and how many
    user messages had personal data masked."""

    name: str
    path: Path
    text: str
    masked: int


def write_story(store: Any, sender: str, out: Path) -> Story:
    """Writes the conversation as an end-to-end test story with Rasa's YAML writer.

    The story is named after the masked sender id, and personal data in user messages is
    masked: the file may be committed. `story` below and the workbench both come here.
    """
    from rasa.shared.core.training_data.story_writer.yaml_story_writer import YAMLStoryWriter

    tracker = load_tracker(store, sender)
    tracker.sender_id = mask_sender(tracker.sender_id)
    masked = 0
    for event in tracker.events:
        if isinstance(event, UserUttered) and event.text and mask(event.text) != event.text:
            _mask_event(event)
            masked += 1
    story = tracker.export_stories(YAMLStoryWriter(), e2e=True).rstrip("\n") + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(story, encoding="utf-8")
    return Story(tracker.sender_id, out, story, masked)


def cmd_story(args: argparse.Namespace) -> int:
    story = write_story(open_store(args.endpoints), args.sender, args.out)
    print(f"wrote test story {story.name} to {args.out}")
    if story.masked:
        print(f"note: personal data masked in {story.masked} user message(s); the masked text may be "
              f"understood differently when the story is replayed")
    return 0


def _mask_event(event: UserUttered) -> None:
    """Masks a user message, moving entity positions to the masked text (or dropping them)."""
    original, text = event.text or "", mask(event.text or "")
    entities = []
    for entity in event.entities:
        value = original[entity["start"]:entity["end"]]
        at = text.find(value)
        if value and at >= 0:
            entities.append({**entity, "start": at, "end": at + len(value)})
    event.text, event.entities = text, entities


def cmd_purge(args: argparse.Namespace) -> int:
    if args.older_than < 0:
        raise ReviewError("--older-than must be 0 days or more")
    purged = purge(open_store(args.endpoints), args.older_than)
    print(f"purged {purged.sessions} sessions started more than {args.older_than:g} days ago "
          f"from {purged.conversations} conversations ({purged.emptied} deleted entirely)")
    return 0


def _turns(conversation: Conversation) -> str:
    count = len(conversation.turns)
    return f"{count} user turn{'' if count == 1 else 's'}"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def relative(path: Path) -> str:
    """`path` relative to the project folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m tools.review",
        description="Review the assistant's stored conversations. User text is masked "
                    "(phone numbers, e-mail addresses, names), and so are sender ids.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, store: bool = True, threshold: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if store:
            sub.add_argument("--endpoints", type=Path, default=ROOT / "endpoints.yml",
                             help="endpoints file whose tracker_store holds the conversations "
                                  "(default: endpoints.yml)")
        if threshold:
            sub.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                             help=f"intent confidence below this is low_confidence (default {DEFAULT_THRESHOLD})")
        return sub

    sub = command("list", "one line per conversation: id, first message date, user turns, flags",
                  threshold=True)
    sub.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="first message on or after this day")
    sub.add_argument("--until", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="first message on or before this day")
    sub.add_argument("--flag", choices=FLAGS, action="append",
                     help="only conversations with this flag (repeat to require several)")
    sub.set_defaults(run=cmd_list)

    sub = command("show", "readable transcript of one conversation", threshold=True)
    sub.add_argument("sender", help="conversation id as `list` prints it (conv-...), or the sender id")
    sub.set_defaults(run=cmd_show)

    sub = command("export", "write low-confidence and fallback messages to a YAML file to label",
                  threshold=True)
    sub.add_argument("--out", type=Path, required=True, metavar="FILE.yml")
    sub.set_defaults(run=cmd_export)

    sub = command("import", "add the labelled items of an export file to the training data "
                            "and validate it", store=False)
    sub.add_argument("file", type=Path, metavar="FILE.yml")
    sub.add_argument("--data-dir", type=Path, default=ROOT / "data" / "nlu",
                     help="NLU data folder to add to (default: data/nlu)")
    sub.set_defaults(run=cmd_import)

    sub = command("story", "write one conversation as a test story for `rasa test core`")
    sub.add_argument("sender", help="conversation id as `list` prints it (conv-...), or the sender id")
    sub.add_argument("--out", type=Path, required=True, metavar="tests/conversations/NAME.yml")
    sub.set_defaults(run=cmd_story)

    sub = command("purge", "delete the sessions (and conversations) that started more than DAYS days ago")
    sub.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    sub.set_defaults(run=cmd_purge)
    return top


def run_command(args: argparse.Namespace, expected: Tuple[type, ...] = (ReviewError,)) -> int:
    """Runs a parsed command of a trainers' tool; an expected error is one line, exit 2."""
    # Rasa's deprecation notes are for its developers, not for reviewers.
    warnings.filterwarnings("ignore")
    logging.getLogger("rasa").setLevel(logging.ERROR)
    try:
        return args.run(args)
    except expected as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
