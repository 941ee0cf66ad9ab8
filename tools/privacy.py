"""Masks personal data that people type, before conversations are shown or exported.

The rules are deliberately simple, so that a reviewer can predict them:

* e-mail addresses (``name@host.tld``) become ``[EMAIL]``;
* phone numbers, i.e. 7 to 15 digits with optional ``+``, spaces, dots, dashes or
  brackets between them, become ``[PHONE]`` (short numbers such as 911 or 988 stay);
* names become ``[NAME]``:
  - the word after "my name is" / "my name's" / "name is" (in any case), with the
    capitalized words that follow it ("my name is Jordan Miller" -> "my name is [NAME]");
  - a capitalized word ("Sarah", not "ER") that the assistant's own data (training
    examples, stories and responses) never uses, with the capitalized words after
    it. So "I'm Sarah", "this is Dave" and "my son Tyler" are masked while
    "I took Klonopin" is kept. A lone unknown word that starts a sentence is kept,
    since every sentence starts with a capital.

Known limits: a lone name that starts a sentence ("Tyler is using again"), a name typed
in lower case without "my name is", a name that is also a word of the training data
("Hope", "Will") and addresses are not masked; digit runs such as dates
(2024-01-05) are masked as phone numbers.
"""
import re
from functools import lru_cache
from pathlib import Path
from typing import FrozenSet, Match, Optional

ROOT = Path(__file__).resolve().parent.parent

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){6,14}(?!\w)")
TITLE_WORD = r"[A-Z][a-z][\w'’-]*"
NAME_CUE = re.compile(
    rf"\b((?i:my\s+name\s+is|my\s+name's|name\s+is)\s+)[A-Za-z][\w'’-]*(?:\s+{TITLE_WORD})*"
)
CAPITALIZED_RUN = re.compile(rf"(?<![\w\[]){TITLE_WORD}(?:\s+{TITLE_WORD})*")
DATA_WORD = re.compile(r"[a-z][a-z'’-]*")
SENTENCE_START = re.compile(r"(?:^|[.!?])\s*$")


@lru_cache(maxsize=1)
def known_words() -> FrozenSet[str]:
    """Lower-cased words of the training data and the domain: these are not names."""
    words = set()
    for path in [*ROOT.glob("data/**/*.yml"), *ROOT.glob("domain/*.yml")]:
        words.update(DATA_WORD.findall(path.read_text(encoding="utf-8").lower()))
    return frozenset(words)


def mask(text: str, known: Optional[FrozenSet[str]] = None) -> str:
    """`text` with e-mail addresses, phone numbers and names replaced by placeholders."""
    known = known_words() if known is None else known
    text = EMAIL.sub("[EMAIL]", text)
    text = PHONE.sub("[PHONE]", text)
    text = NAME_CUE.sub(r"\1[NAME]", text)
    return CAPITALIZED_RUN.sub(lambda match: _mask_run(match, known), text)


def _mask_run(match: Match[str], known: FrozenSet[str]) -> str:
    """Masks a run of capitalized words from its first word the data doesn't know."""
    words = match.group(0).split()
    unknown = [i for i, word in enumerate(words) if _plain(word) not in known]
    if not unknown:
        return match.group(0)
    at_sentence_start = SENTENCE_START.search(match.string[: match.start()]) is not None
    if len(words) == 1 and at_sentence_start:
        return match.group(0)
    return " ".join(words[: unknown[0]] + ["[NAME]"])


def _plain(word: str) -> str:
    return re.sub(r"['’]s$", "", word.lower()).strip("'’-")
