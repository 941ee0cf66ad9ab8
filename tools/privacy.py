"""Masks personal data that people type, before conversations are shown or exported.

The rules are deliberately simple, so that a reviewer can predict them:

* e-mail addresses become ``[EMAIL]``: ``name@host.tld``, and the spelled-out forms
  ``name(at)host(dot)tld``, ``name [at] host.tld`` and ``name at host dot tld``;
* phone numbers, i.e. 7 to 15 digits with optional ``+``, spaces, dots, dashes, slashes
  or brackets between them and an optional extension (``x12``, ``ext. 12``), become
  ``[PHONE]``. Kept: short numbers (911, 988), the numbers the assistant's own
  responses give (the SAMHSA helpline 1-800-662-4357) and dates (2024-01-05,
  01/05/2024, 1.5.24);
* names become ``[NAME]``:
  - after "my name is" / "my name's" / "name is": the next word, whatever it is, with
    the capitalized words that follow it ("my name is Jordan Miller" -> "my name is
    [NAME]");
  - after a title (Dr, Mr, Mrs, Ms, Mx, Prof; also lower-case dr, mr, mrs): a capitalized
    word, or a word the data doesn't know, with the capitalized words after it
    ("Dr. Smith" -> "Dr. [NAME]", "dr smith" -> "dr [NAME]");
  - after "I'm" / "im" / "I am" / "this is" / "call me" / "my <relative>" (son, wife,
    friend...), in any case: the next word if the data doesn't know it and it has no
    ending of NOT_A_NAME (-ing, -ed, -less, -ous...), with the unknown words right after
    it ("im sarah" -> "im [NAME]"; "i'm scared", "im sitting", "I'm worthless" stay);
  - a capitalized word ("Sarah", not "ER") that the data doesn't know, with the
    capitalized words after it ("my son Tyler" -> "my son [NAME]"). At the start of a
    sentence a lone word is masked only when it ends in 's or the next word is a verb
    of VERBS ("Tyler is using again" -> "[NAME] is using again"), since every sentence
    starts with a capital ("Honestly I am scared" stays).
  "The data" is the words of the assistant's training examples, stories and responses
  and their -s, -ed and -ing forms, with the month and weekday names and the everyday
  words of EVERYDAY.

Known limits: a lower-case name without one of the cues above ("tyler is using") or with
an ending of NOT_A_NAME ("im jared", "my son vincent"), a name that is also a word of
the data ("Hope", "Will") and addresses are not masked; dates, including a date of
birth, stay; "john at gmail.com" stays (with "at" not in brackets, "dot" must be
spelled out too). A capitalized word the data doesn't know is masked even when it is
no name (a drug or a place the data never mentions: "I live in Ohio" -> "I live in
[NAME]"), and so is an unknown adjective after "I'm" ("I'm [NAME]" for "I'm elated").
"""
import hashlib
import hmac
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import FrozenSet, Match, Optional

ROOT = Path(__file__).resolve().parent.parent

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BRACKETED = r"\s*[(\[{]\s*WORD\s*[)\]}]\s*"
AT, DOT = _BRACKETED.replace("WORD", "(?i:at)"), _BRACKETED.replace("WORD", "(?i:dot)")
SPOKEN_DOT = rf"(?:{DOT}|\s+(?i:dot)\s+)"
SPELLED_EMAIL = re.compile(
    rf"(?<![\w.'’+-])[\w.+-]+(?:{AT}[\w-]+(?:(?:{SPOKEN_DOT}|\.)[\w-]+)+"
    rf"|\s+(?i:at)\s+[\w-]+(?:{SPOKEN_DOT}[\w-]+)+)(?![\w@])"
)
# A date comes first in the alternation, so that its digits are not read as a phone number.
DAY, MONTH, YEAR = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])", r"(?:19|20)\d\d"
DATE = rf"{YEAR}[-/.]{MONTH}[-/.]{DAY}|{DAY}[-/.]{DAY}[-/.](?:{YEAR}|\d\d)"
PHONE_DIGITS = r"\+?\(?\d(?:[\s()./-]{0,2}\d){6,14}(?:\s*(?i:x|ext\.?|extension)\s*\d{1,6})?"
DATE_OR_PHONE = re.compile(rf"(?<![\w+])(?:(?P<date>{DATE})|(?P<phone>{PHONE_DIGITS}))(?![\w/])")
EXTENSION = re.compile(r"\s*(?i:x|ext\.?|extension)\s*\d+$")

TITLE_WORD = r"[A-Z][a-z][\w'’-]*"
ANY_WORD = r"[A-Za-z][\w'’-]*"
NAME_CUE = re.compile(rf"\b((?i:my\s+name\s+is|my\s+name's|name\s+is)\s+){ANY_WORD}(?:\s+{TITLE_WORD})*")
TITLES = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof"})
TITLE_CUE = re.compile(rf"\b((?:Dr|Mr|Mrs|Ms|Mx|Prof|dr|mr|mrs)\.?\s+)({ANY_WORD})((?:\s+{TITLE_WORD})*)")
RELATIVES = (
    "son|daughter|husband|wife|boyfriend|girlfriend|partner|fiance|fiancee|brother|sister|"
    "mom|mum|mother|dad|father|friend|cousin|uncle|aunt|nephew|niece|grandson|granddaughter"
)
INTRO_CUE = re.compile(rf"\b(?i:i['’]?m|i\s+am|this\s+is|call\s+me|my\s+(?:{RELATIVES}))\s+(?=[A-Za-z])")
WORD_AND_SPACE = re.compile(rf"({ANY_WORD})(\s*)")
CAPITALIZED_RUN = re.compile(rf"(?<![\w\[]){TITLE_WORD}(?:\s+{TITLE_WORD})*")
DATA_WORD = re.compile(r"[a-z][a-z'’-]*")
SENTENCE_START = re.compile(r"(?:^|[.!?])\s*$")
NEXT_WORD = re.compile(r"\s+([\w'’]+)")
POSSESSIVE = re.compile(r"['’]s$")
# Words that follow a person's name: a lone unknown word before one of them is masked
# even at the start of a sentence.
VERBS = frozenset("""
    is was has had keeps kept took takes uses used started stopped quit relapsed overdosed
    says said told wants needs got gets went goes will would can could should might
    won't wont can't cant doesn't doesnt didn't didnt isn't isnt wasn't wasnt just still never
    always also
""".split())
# Words people write after "I'm" or "this is" that are no names, missing from the data.
EVERYDAY = frozenset("""
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday christmas thanksgiving easter
    sober ridiculous insane desperate currently literally pretty actually basically totally
    completely absolutely seriously kind sort tryna bout hella lowkey finally officially
    homeless pregnant broke alone single married divorced allergic diabetic epileptic
    psychotic manic autistic bipolar afraid aware unsure proud happy angry lonely stuck numb
    weak hungry poor fat ugly stupid lazy young low dirty busy drunk dopesick jittery paranoid
""".split())
# Endings of the words people write after "I'm" that the data doesn't know ("im sitting",
# "I'm worthless", "I am concerned"): seldom names, so not masked after an intro cue.
NOT_A_NAME = re.compile(r"(?:ing|ed|less|ful|ous|able|ible|ive|ness|ent|ant)$", re.IGNORECASE)
SENDER_KEY = ROOT / ".sender-key"
MASKED_SENDER = re.compile(r"conv-[0-9a-f]{10}")


@lru_cache(maxsize=1)
def known_words() -> FrozenSet[str]:
    """Lower-cased words of the training data and the domain: these are not names."""
    words = set(EVERYDAY)
    for path in [*ROOT.glob("data/**/*.yml"), *ROOT.glob("domain/*.yml")]:
        words.update(DATA_WORD.findall(path.read_text(encoding="utf-8").lower()))
    return frozenset(words)


@lru_cache(maxsize=1)
def public_numbers() -> FrozenSet[str]:
    """Digits of the phone numbers the assistant's responses give (helplines): not personal."""
    numbers = set()
    for path in ROOT.glob("domain/*.yml"):
        for match in DATE_OR_PHONE.finditer(path.read_text(encoding="utf-8")):
            if match.group("phone"):
                numbers.add(_national(match.group("phone")))
    return frozenset(numbers)


def mask(text: str, known: Optional[FrozenSet[str]] = None) -> str:
    """`text` with e-mail addresses, phone numbers and names replaced by placeholders."""
    known = known_words() if known is None else known
    text = EMAIL.sub("[EMAIL]", text)
    text = SPELLED_EMAIL.sub("[EMAIL]", text)
    text = DATE_OR_PHONE.sub(_mask_number, text)
    text = TITLE_CUE.sub(lambda match: _mask_after_title(match, known), text)
    text = NAME_CUE.sub(r"\1[NAME]", text)
    text = _mask_intros(text, known)
    return CAPITALIZED_RUN.sub(lambda match: _mask_run(match, known), text)


def mask_sender(sender: str) -> str:
    """The id a reviewer sees for a conversation: `conv-` and 10 hex digits.

    A keyed hash (HMAC-SHA-256), since the sender id can be a phone number (Twilio) and a
    plain hash of a phone number is undone by hashing every phone number. The key is made
    once and kept in .sender-key (git-ignored), so a conversation keeps its id.
    """
    digest = hmac.new(_sender_key(), sender.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"conv-{digest[:10]}"


@lru_cache(maxsize=1)
def _sender_key() -> bytes:
    if not SENDER_KEY.exists():
        draft = SENDER_KEY.with_name(f"{SENDER_KEY.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(draft, SENDER_KEY)  # atomic: a key another process made first wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return bytes.fromhex(SENDER_KEY.read_text().strip())


def _national(number: str) -> str:
    """The digits of a phone number without its extension and a leading country code 1."""
    digits = re.sub(r"\D", "", EXTENSION.sub("", number))
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def _mask_number(match: Match[str]) -> str:
    if match.group("date") or _national(match.group(0)) in public_numbers():
        return match.group(0)
    return "[PHONE]"


def _known(word: str, known: FrozenSet[str]) -> bool:
    """A word of the data, or an -s, -ed or -ing form of one ("leaves", "sitting")."""
    plain = _plain(word)
    if plain in known or plain in TITLES:
        return True
    for suffix in ("ing", "ed", "es", "s"):
        stem = plain[: -len(suffix)]
        if plain.endswith(suffix) and len(stem) >= 3:
            if {stem, stem + "e", stem[:-1] if stem[-1] == stem[-2] else stem} & known:
                return True
    return False


def _with_possessive(word: str) -> str:
    """[NAME], keeping an 's ("Tyler's mom" -> "[NAME]'s mom")."""
    suffix = POSSESSIVE.search(word)
    return "[NAME]" + (suffix.group(0) if suffix else "")


def _mask_after_title(match: Match[str], known: FrozenSet[str]) -> str:
    title, word, surnames = match.groups()
    if word[0].islower() and _known(word, known):
        return match.group(0)
    return title + _with_possessive((surnames.split() or [word])[-1])


def _mask_intros(text: str, known: FrozenSet[str]) -> str:
    """Masks the word after "I'm", "this is"... if the data doesn't know it and it has no
    ending of NOT_A_NAME, with the unknown words right after it."""
    parts, position = [], 0
    for cue in INTRO_CUE.finditer(text):
        if cue.start() < position:  # within words masked already
            continue
        last, word = None, WORD_AND_SPACE.match(text, cue.end())
        while word and not _ordinary(word.group(1), known):
            last = word
            word = WORD_AND_SPACE.match(text, word.end()) if word.group(2) else None
        if last:
            parts += [text[position : cue.end()], _with_possessive(last.group(1))]
            position = last.end(1)
    return "".join(parts) + text[position:]


def _ordinary(word: str, known: FrozenSet[str]) -> bool:
    return _known(word, known) or NOT_A_NAME.search(word) is not None


def _mask_run(match: Match[str], known: FrozenSet[str]) -> str:
    """Masks a run of capitalized words from its first word the data doesn't know."""
    words = match.group(0).split()
    unknown = [i for i, word in enumerate(words) if not _known(word, known)]
    if not unknown:
        return match.group(0)
    at_sentence_start = SENTENCE_START.search(match.string[: match.start()]) is not None
    if len(words) == 1 and at_sentence_start and not _names_someone(match):
        return match.group(0)
    return " ".join(words[: unknown[0]] + [_with_possessive(words[-1])])


def _names_someone(match: Match[str]) -> bool:
    """A lone word at the start of a sentence that reads as a name: "Tyler's", "Tyler is"."""
    following = NEXT_WORD.match(match.string, match.end())
    return bool(POSSESSIVE.search(match.group(0))) or (
        following is not None and following.group(1).lower() in VERBS
    )


def _plain(word: str) -> str:
    return POSSESSIVE.sub("", word.lower()).strip("'’-")
