"""`make bench`: this assistant against the stock `rasa init` bot, same machine, same run.

For each bot: train from scratch (fresh Rasa cache) and time it, start its action server
and Rasa server on loopback exactly as `make run` would (tools/servers.py: same
environment, channels and tracker store), wait until every worker is up, warm up, then drive it over REST from a
separate load process (bench/load.py): 1 user, 10 and 50 concurrent users chatting for
a fixed time (three repeats each), and latency along long conversations. Only one
bot's servers run at a time. Writes bench/results/latest.{md,json} and latency.png,
and prints the table.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import yaml

from tools.servers import ROOT, action_server, free_port, rasa, rasa_server, server_env, stop_all

RESULTS = ROOT / "bench" / "results"

REPEATS = 3
WARM_UP = {"users": 10, "seconds": 3}  # concurrent, so that every worker warms up
LOADS = [  # users, each chatting in fresh six-turn conversations for that long
    {"users": 1, "seconds": 5},
    {"users": 10, "seconds": 8},
    {"users": 50, "seconds": 8},
]
LONG = {"long": 100, "repeats": 3}
MARK_TURNS = [1, 10, 50, 100]


@dataclass
class Bot:
    """One bot under test: where it lives, how it is trained and what it measured."""

    name: Text
    project: Path
    model: Path
    train_command: List[Text]
    endpoints: Dict[Text, Any]
    credentials: Path
    env: Dict[Text, Text] = field(default_factory=dict)  # on top of os.environ
    results: Dict[Text, Any] = field(default_factory=dict)


def train(bot: Bot, workdir: Path) -> None:
    """Trains from scratch: a fresh cache, so nothing is reused from an earlier training."""
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(workdir / f"cache-{bot.name}")}
    start = time.perf_counter()
    subprocess.run(bot.train_command, cwd=bot.project, env=env, check=True,
                   stdout=(workdir / f"train-{bot.name}.log").open("w"), stderr=subprocess.STDOUT)
    bot.results["training_s"] = time.perf_counter() - start
    if not bot.model.exists():  # `rasa init` names its model by date
        sorted(bot.model.parent.glob("*.tar.gz"))[-1].rename(bot.model)
    bot.results["model_mb"] = bot.model.stat().st_size / 1e6
    print(f"{bot.name}: trained in {bot.results['training_s']:.0f} s", flush=True)


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set of a process and its children (Sanic workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    peaks = []
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def load(url: Text, bot: Bot, **options: int) -> Dict[Text, Any]:
    args = [f"--{key}={value}" for key, value in options.items()]
    output = subprocess.run([sys.executable, "-m", "bench.load", url, bot.name, *args],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    result = json.loads(output)
    if result.get("errors"):
        raise RuntimeError(f"{bot.name}: {len(result['errors'])} errors: {result['errors'][:3]}")
    return result


def serve_and_measure(bot: Bot, workdir: Path) -> None:
    action_port, rasa_port = free_port(), free_port()
    endpoints = {**bot.endpoints, "action_endpoint": {"url": f"http://127.0.0.1:{action_port}/webhook"}}
    endpoints_file = workdir / f"endpoints-{bot.name}.yml"
    endpoints_file.write_text(yaml.safe_dump(endpoints))
    actions = action_server(action_port, workdir / f"actions-{bot.name}.log", env=bot.env, cwd=bot.project)
    server = rasa_server(rasa_port, workdir / f"rasa-{bot.name}.log", endpoints=endpoints_file,
                         credentials=bot.credentials, model=bot.model, env=bot.env, cwd=bot.project)
    try:
        actions.start()
        server.start()
        url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
        load(url, bot, **WARM_UP)
        runs = [[load(url, bot, **options) for options in LOADS] for _ in range(REPEATS)]
        bot.results["loads"] = [
            summarize([run[index] for run in runs]) for index in range(len(LOADS))
        ]
        by_turn = load(url, bot, **LONG)["latency_by_turn_ms"]
        bot.results["by_turn_p50_ms"] = {
            turn: statistics.median(turn_window(by_turn, turn)) for turn in MARK_TURNS
        }
        bot.results["server_rss_mb"] = peak_rss_mb(server.pid)
        bot.results["actions_rss_mb"] = peak_rss_mb(actions.pid)
    finally:
        stop_all(server, actions)
    for process in (server, actions):
        process.check_log()
    print(f"{bot.name}: measured", flush=True)


def turn_window(by_turn: List[List[float]], turn: int) -> List[float]:
    """Latencies of the turns around `turn` (1-based) in every long conversation."""
    index = turn - 1
    window = by_turn[max(0, index - 2): index + 3]
    return [value for values in window for value in values]


def summarize(repeats: List[Dict[Text, Any]]) -> Dict[Text, Any]:
    """Median of the repeats for each figure, and the spread (max - min) / median."""
    summary: Dict[Text, Any] = {"users": repeats[0]["users"], "messages": repeats[0]["messages"]}
    for key in ("throughput", "p50_ms", "p95_ms", "p99_ms"):
        values = [repeat[key] for repeat in repeats]
        median = statistics.median(values)
        summary[key] = median
        summary[f"{key}_spread"] = (max(values) - min(values)) / median
    return summary


def stock_bot(workdir: Path) -> Bot:
    project = workdir / "stock"
    project.mkdir()
    return Bot(
        name="stock", project=project, model=project / "models" / "stock.tar.gz",
        train_command=rasa("init", "--no-prompt", "--init-dir", str(project)),
        endpoints={}, credentials=project / "credentials.yml",
    )


def assistant_bot(workdir: Path) -> Bot:
    # The rate limits would refuse the long conversations' 100 messages, all from one
    # address, in a few seconds; everything else is credentials.yml as it is.
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    credentials["channels.rest.CheckedRestInput"] = {
        **(credentials.get("channels.rest.CheckedRestInput") or {}),
        "rate_limit": 100_000, "address_rate_limit": 100_000,
    }
    (workdir / "credentials.yml").write_text(yaml.safe_dump(credentials))
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["tracker_store"]["db"] = str(workdir / "tracker.db")
    endpoints["lock_store"]["db"] = str(workdir / "locks.db")
    model_dir = workdir / "assistant-model"
    return Bot(
        name="assistant", project=ROOT, model=model_dir / "withdrawal-help.tar.gz",
        train_command=rasa("train", "--domain", "domain", "--out", str(model_dir),
                           "--fixed-model-name", "withdrawal-help"),
        endpoints=endpoints, credentials=workdir / "credentials.yml", env=server_env(),
    )



def ratio(ours: Optional[float], stock: Optional[float]) -> float:
    return ours / stock if ours is not None and stock else float("nan")


def report(assistant: Bot, stock: Bot) -> Dict[Text, Any]:
    def figure(bot: Bot, load_index: int, key: Text) -> float:
        return bot.results["loads"][load_index][key]

    a, s = assistant.results, stock.results
    result = {
        "throughput_ratio_c10": ratio(figure(assistant, 1, "throughput"), figure(stock, 1, "throughput")),
        "p95_ratio_c10": ratio(figure(assistant, 1, "p95_ms"), figure(stock, 1, "p95_ms")),
        "p50_ratio_c1": ratio(figure(assistant, 0, "p50_ms"), figure(stock, 0, "p50_ms")),
        "rss_ratio": ratio(a["server_rss_mb"], s["server_rss_mb"]),
        "throughput_ratio_c50": ratio(figure(assistant, 2, "throughput"), figure(stock, 2, "throughput")),
        "training_ratio": ratio(a["training_s"], s["training_s"]),
        "turn100_over_turn1": {
            bot.name: ratio(bot.results["by_turn_p50_ms"][100], bot.results["by_turn_p50_ms"][1])
            for bot in (assistant, stock)
        },
        "machine": {"cores": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "assistant": a,
        "stock": s,
    }
    return result


def replies(results: Dict[Text, Any]) -> Text:
    return ", ".join(f"{load['messages']} ({load['users']} users)" for load in results["loads"])


def markdown(result: Dict[Text, Any]) -> Text:
    a, s = result["assistant"], result["stock"]
    rows = [("figure", "assistant", "stock rasa init", "assistant / stock")]

    def add(label: Text, ours: float, stock: float, fmt: Text = "{:.1f}") -> None:
        rows.append((label, fmt.format(ours), fmt.format(stock), f"{ratio(ours, stock):.2f}"))

    names = {1: "1 user", 10: "10 users", 50: "50 users"}
    for ours, stock in zip(a["loads"], s["loads"], strict=True):
        label = names[ours["users"]]
        if ours["users"] == 1:
            add(f"{label}: p50 latency (ms)", ours["p50_ms"], stock["p50_ms"])
            add(f"{label}: p95 latency (ms)", ours["p95_ms"], stock["p95_ms"])
            add(f"{label}: p99 latency (ms)", ours["p99_ms"], stock["p99_ms"])
        add(f"{label}: throughput (msg/s)", ours["throughput"], stock["throughput"])
        if ours["users"] > 1:
            add(f"{label}: p95 latency (ms)", ours["p95_ms"], stock["p95_ms"])
    for turn in MARK_TURNS:
        add(f"long conversation, turn {turn}: p50 (ms)", a["by_turn_p50_ms"][turn], s["by_turn_p50_ms"][turn])
    add("peak RSS, Rasa server (MB)", a["server_rss_mb"], s["server_rss_mb"], "{:.0f}")
    add("peak RSS, action server (MB)", a["actions_rss_mb"], s["actions_rss_mb"], "{:.0f}")
    add("training from scratch (s)", a["training_s"], s["training_s"], "{:.0f}")
    add("model archive (MB)", a["model_mb"], s["model_mb"])
    table = "\n".join("| " + " | ".join(row) + " |" for row in [rows[0], ("---",) * 4, *rows[1:]])

    spreads = [
        f"| {bot} {load['users']} users | {load['throughput_spread']:.0%} | {load['p50_ms_spread']:.0%}"
        f" | {load['p95_ms_spread']:.0%} |"
        for bot, results in (("assistant", a), ("stock", s)) for load in results["loads"]
    ]
    turn_ratios = result["turn100_over_turn1"]
    return "\n".join([
        "# Benchmark: this assistant against the stock `rasa init` bot",
        "",
        f"Same machine ({result['machine']['cores']} cores), same run, REST channel, separate load process. "
        f"Each load figure is the median of {REPEATS} repeats; each repeat lets the users chat for "
        + ", ".join(f"{options['seconds']} s ({options['users']} users)" for options in LOADS)
        + f"; replies per repeat, assistant: {replies(a)}; stock: {replies(s)}.",
        "",
        table,
        "",
        f"Turn 100 / turn 1 p50: assistant {turn_ratios['assistant']:.2f}, stock {turn_ratios['stock']:.2f}.",
        "",
        "Spread of the repeats, (max - min) / median:",
        "",
        "| run | throughput | p50 | p95 |",
        "| --- | --- | --- | --- |",
        *spreads,
        "",
        "![latency against concurrency](latency.png)",
        "",
    ])


def plot(result: Dict[Text, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, style in (("assistant", "-o"), ("stock", "--s")):
        loads = result[name]["loads"]
        users = [load["users"] for load in loads]
        axis.plot(users, [load["p50_ms"] for load in loads], style, label=f"{name} p50")
        axis.plot(users, [load["p95_ms"] for load in loads], style, alpha=0.5, label=f"{name} p95")
    axis.set_xlabel("concurrent users")
    axis.set_ylabel("latency per message (ms)")
    axis.set_xscale("log")
    axis.set_xticks([1, 10, 50], ["1", "10", "50"])
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(RESULTS / "latency.png", dpi=100)


def main() -> None:
    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="withdrawal-help-bench-"))
    try:
        assistant, stock = assistant_bot(workdir), stock_bot(workdir)
        train(assistant, workdir)
        train(stock, workdir)
        for bot in (assistant, stock):
            serve_and_measure(bot, workdir)
        result = report(assistant, stock)
        result["bench_minutes"] = (time.perf_counter() - started) / 60
        (RESULTS / "latest.json").write_text(json.dumps(result, indent=2))
        text = markdown(result)
        (RESULTS / "latest.md").write_text(text)
        plot(result)
        print(text)
        print(f"bench took {result['bench_minutes']:.1f} min; logs in {workdir}")
    except BaseException:
        print(f"bench failed; logs in {workdir}", file=sys.stderr)
        raise
    if os.environ.get("BENCH_KEEP_LOGS") is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
