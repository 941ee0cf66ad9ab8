"""A candidate model trained from the current data, in the background, and scored beside
the running model on the held-out sets (tools/heldout.py) and the real-world
development sets (tools/realworld.py), as `make evaluate` scores them.

The workbench starts `python -m workbench.candidate` as a separate process, which writes
its progress to `status.json` in its work folder; the page reads that file. The
candidate is written to that work folder only: it never replaces the running model.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Optional

from tools.conversations import ROOT

STATUS = "status.json"
CANDIDATE = "candidate"  # the model's name: <work>/candidate.tar.gz
# Share of the progress bar each stage ends at.
TRAINED, CANDIDATE_SCORED = 70, 88
DONE_LINE = re.compile(r"(Finished training component|Restored component) '")
EPOCHS = re.compile(r"Epochs:\s+(\d+)%")


def read_status(work: Path) -> Dict[str, Any]:
    """The job's last status ({"state": "none"} before the first one)."""
    try:
        return json.loads((work / STATUS).read_text())
    except (OSError, ValueError):
        return {"state": "none"}


def running(work: Path) -> bool:
    """Whether a job is under way: its status says so and its process is alive."""
    status = read_status(work)
    if status.get("state") != "running":
        return False
    try:
        os.kill(int(status.get("pid", 0)), 0)
    except (OSError, ValueError):
        return False
    return True


def start(work: Path, data_dir: Path, model: Path) -> None:
    """Starts a job in its own process (it outlives a request; the page polls its status)."""
    work.mkdir(parents=True, exist_ok=True)
    log = (work / "job.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.candidate", "--work", str(work), "--data-dir", str(data_dir),
         "--model", str(model)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    _write(work, {"state": "running", "pid": process.pid, "progress": 0, "step": "starting",
                  "started": time.time()})


class Job:
    def __init__(self, work: Path, data_dir: Path, model: Path) -> None:
        self.work, self.data_dir, self.model = work, data_dir, model
        self.status: Dict[str, Any] = {"state": "running", "pid": os.getpid(), "progress": 0,
                                       "step": "starting", "started": time.time()}

    def update(self, **changes: Any) -> None:
        self.status.update(changes)
        _write(self.work, self.status)

    def run(self) -> None:
        try:
            self.update(progress=1, step="training the candidate model from the current data")
            candidate = self.train()
            self.update(progress=TRAINED, step="scoring the candidate model")
            scores = {"candidate": model_scores(candidate)}
            self.update(progress=CANDIDATE_SCORED, step="scoring the running model")
            scores["running"] = self.running_scores()
            self.update(state="done", progress=100, step="done", scores=scores, finished=time.time(),
                        candidate=str(candidate))
        except Exception as error:  # noqa: BLE001 - whatever it was, the page must say so
            traceback.print_exc()
            self.update(state="failed", step="failed", error=str(error)[-2000:], finished=time.time())

    def train(self) -> Path:
        """`rasa train` on the data folder with the project's config, domain, stories and rules."""
        core = [str(p) for p in sorted((ROOT / "data").glob("*.yml"))
                if self.data_dir.resolve() not in p.resolve().parents]
        nodes = max(1, len(re.findall(r"^\s*- name:", (ROOT / "config.yml").read_text(), re.M)))
        command = [str(Path(sys.executable).parent / "rasa"), "train", "--config", str(ROOT / "config.yml"),
                   "--domain", str(ROOT / "domain"), "--data", str(self.data_dir), *core,
                   "--out", str(self.work), "--fixed-model-name", CANDIDATE]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"})
        done, tail = 0, []
        for line in _lines(process.stdout):
            tail = (tail + [line])[-40:]
            done += bool(DONE_LINE.search(line))
            epochs = EPOCHS.search(line)
            within = int(epochs.group(1)) / 100 if epochs else 0
            progress = 1 + (TRAINED - 2) * min((done + within) / nodes, 0.97)
            if int(progress) > self.status.get("progress", 0):
                self.update(progress=int(progress))
        if process.wait() != 0:
            raise RuntimeError("rasa train failed:\n" + "\n".join(tail))
        return self.work / f"{CANDIDATE}.tar.gz"

    def running_scores(self) -> Dict[str, Any]:
        """The running model's scores, kept beside it while the model file stays the same."""
        digest = hashlib.sha256(self.model.read_bytes()).hexdigest()
        cache = self.work / f"running-{digest[:16]}.json"
        if cache.exists():
            return json.loads(cache.read_text())
        scores = model_scores(self.model)
        cache.write_text(json.dumps(scores))
        return scores


def model_scores(model: Path) -> Dict[str, Any]:
    """Held-out figures and the real-world development sets' four figures of a model."""
    import asyncio

    from rasa.core.agent import Agent

    from tools import heldout, realworld

    agent, loop = Agent.load(str(model)), asyncio.new_event_loop()
    held = heldout.scores(lambda text: loop.run_until_complete(agent.parse_message(text)))
    real = realworld.evaluate(agent, realworld.development_sets(), realworld.domain_responses())
    return {
        "heldout": {key: held[key] for key in ("crisis_recall", "false_alarm_rate", "topic_accuracy")},
        "realworld": {name: part["figures"] for name, part in real.items()},
    }


def _lines(stream: Any):
    """Lines of a process's output, progress bars (which end in carriage returns) included."""
    buffer = ""
    while True:
        chunk = stream.read(256)
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = re.split(r"[\r\n]", buffer)
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def _write(work: Path, status: Dict[str, Any]) -> None:
    """Writes the status whole (a reader never sees half a file)."""
    draft = work / f"{STATUS}.{os.getpid()}"
    draft.write_text(json.dumps(status))
    draft.replace(work / STATUS)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="train and score a candidate model (the workbench starts this)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    Job(args.work, args.data_dir, args.model).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
