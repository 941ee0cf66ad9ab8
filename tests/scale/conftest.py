"""One stack of real services (see stack.py) for the whole test session: starting a Rasa
replica loads the model, which takes a minute or more on a two-core machine."""
import pytest

from stack import MODEL, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    assert MODEL.exists(), "run `make train` first (make test does it)"
    running = Stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()
