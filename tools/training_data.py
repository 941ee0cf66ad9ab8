"""Adding reviewed user messages to the NLU training data, in Rasa's YAML format."""
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set

from rasa.shared.core.domain import Domain
from rasa.shared.data import get_data_files, is_nlu_file
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData as RasaTrainingData

ROOT = Path(__file__).resolve().parent.parent
NLU_DIR = ROOT / "data" / "nlu"


def normalise(text: str) -> str:
    """How examples are compared, by `make review` and by the tests: lower case,
    apostrophes dropped ("what's" and "whats" are one word), other punctuation a space,
    single spaces. Letters of any language stay ("daño")."""
    return " ".join(re.sub(r"[^\w\s]", " ", re.sub(r"['\u2019]", "", text.lower())).split())


@dataclass
class NluData:
    """What the data folder already holds: example texts and the intents they teach."""

    files: List[Path]
    # normalised example text -> its intent (faq/<topic> for retrieval intents)
    examples: Dict[str, str]
    intents: Set[str]
    retrieval_intents: Set[str]

    @classmethod
    def load(cls, data_dir: Path, domain: Domain) -> "NluData":
        files = sorted(Path(f) for f in get_data_files([str(data_dir)], is_nlu_file))
        messages = RasaTrainingData().merge(*[load_data(str(f)) for f in files]).training_examples
        examples = {normalise(m.get("text")): m.get_full_intent() for m in messages}
        topics = {intent for intent in examples.values() if "/" in intent}
        retrieval = {topic.split("/")[0] for topic in topics}
        return cls(files, examples, (set(domain.intents) - retrieval) | topics, retrieval)

    def refusal(self, text: str, intent: str) -> Optional[str]:
        """Why `text` may not be added as an example of `intent`, or None if it may."""
        if intent in self.retrieval_intents:
            return f"'{intent}' needs a topic: use {intent}/<topic>"
        if intent not in self.intents:
            return f"unknown intent '{intent}' (not in the domain, nor an existing faq/<topic>)"
        if not normalise(text):
            return "empty text"
        existing = self.examples.get(normalise(text))
        if existing:
            return f"already in the training data (as {existing})"
        if self.file_for(intent) is None:
            return f"no NLU file holds examples of '{intent}'"
        return None

    def file_for(self, intent: str) -> Optional[Path]:
        """The NLU file with an `- intent: <intent>` block."""
        for path in self.files:
            if _intent_line(path.read_text(encoding="utf-8").splitlines(), intent) is not None:
                return path
        return None

    def add(self, text: str, intent: str) -> Path:
        """Appends `text` under the `examples: |` block of `intent`; the file changed."""
        path = self.file_for(intent)
        assert path is not None, intent
        append_example(path, intent, text)
        self.examples[normalise(text)] = intent
        return path


def _intent_line(lines: List[str], intent: str) -> Optional[int]:
    pattern = re.compile(rf"-\s+intent:\s*['\"]?{re.escape(intent)}['\"]?\s*(#.*)?")
    return next((i for i, line in enumerate(lines) if pattern.fullmatch(line.strip())), None)


def append_example(path: Path, intent: str, text: str) -> None:
    """Adds `- text` as the last line of the intent's `examples: |` block.

    Edits the lines rather than re-dumping the YAML, so comments, order and the
    block style of every other example stay exactly as the trainers wrote them.
    Assumes `examples` is the last key of the intent's item, as in this project.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = _intent_line([line.rstrip("\n") for line in lines], intent)
    if start is None:
        raise ValueError(f"{path} has no intent {intent}")
    item_indent = _indent(lines[start])
    last, indent = None, ""
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and _indent(line) <= item_indent:
            break  # the next item of the nlu list
        if line.lstrip().startswith("- "):
            last, indent = i, line[: _indent(line)]
    if last is None:
        raise ValueError(f"{path}: intent {intent} has no examples block to extend")
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, f"{indent}- {' '.join(text.split())}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def validate(data_dir: Path) -> subprocess.CompletedProcess:
    """`rasa data validate --domain domain` on `data_dir` plus the project's stories and rules."""
    core_files = [
        str(p) for p in sorted((ROOT / "data").glob("*.yml"))
        if data_dir.resolve() not in p.resolve().parents
    ]
    command = [
        str(Path(sys.executable).parent / "rasa"), "data", "validate",
        "--domain", str(ROOT / "domain"), "--config", str(ROOT / "config.yml"),
        "--data", str(data_dir), *core_files,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
