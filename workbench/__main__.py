"""`python -m workbench serve` starts the workbench; `python -m workbench user NAME` makes an
account (the password is asked twice, or read from standard input with --password-stdin)."""
import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import List, Optional

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from tools.conversations import ROOT, ReviewError, open_store  # noqa: E402
from tools.review import run_command  # noqa: E402
from workbench.accounts import AccountError, Accounts  # noqa: E402

DEFAULT_PORT = 5010
DEFAULT_DB = ROOT / "workbench.db"


def serve(args: argparse.Namespace) -> int:
    from workbench.app import Settings, create_app

    accounts = Accounts(args.db)
    if not accounts.users():
        print("There is no workbench account yet: create one with `make workbench-user ARGS=<name>`.",
              file=sys.stderr)
        return 2
    hosts = {f"{name}:{args.port}" for name in ("localhost", "127.0.0.1", "[::1]", args.host)}
    settings = Settings(
        store=open_store(args.endpoints), accounts=accounts, data_dir=args.data_dir,
        stories_dir=args.stories_dir, work_dir=args.work_dir, model=args.model,
        allowed_hosts=sorted(hosts | {h.lower() for h in args.allowed_host or []}),
    )
    print(f"The trainers' workbench is at http://localhost:{args.port}/ (stop with Ctrl+C).", flush=True)
    create_app(settings).run(host=args.host, port=args.port, workers=1, access_log=False, motd=False)
    return 0


def add_user(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.name} (12 characters or more): ")
        if getpass.getpass("The same password again: ") != password:
            print("error: the two passwords differ; nothing was created", file=sys.stderr)
            return 2
    Accounts(args.db).create_user(args.name, password)
    print(f"created workbench account '{args.name}' in {args.db}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m workbench", description="The trainers' workbench.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser("serve", help="start the workbench (on this machine only by default)")
    sub.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    sub.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    sub.add_argument("--endpoints", type=Path, default=ROOT / "endpoints.yml",
                     help="endpoints file whose tracker_store holds the conversations")
    sub.add_argument("--data-dir", type=Path, default=ROOT / "data" / "nlu",
                     help="NLU data that corrections are added to (default data/nlu)")
    sub.add_argument("--stories-dir", type=Path, default=ROOT / "tests" / "conversations",
                     help="where saved test stories go (default tests/conversations)")
    sub.add_argument("--work-dir", type=Path, default=ROOT / "build" / "workbench",
                     help="candidate models and their scores (default build/workbench)")
    sub.add_argument("--model", type=Path, default=ROOT / "models" / "withdrawal-help.tar.gz",
                     help="the running model that candidates are compared with")
    sub.add_argument("--allowed-host", action="append", metavar="HOST:PORT",
                     help="another Host header to answer, e.g. behind a proxy (repeat for several)")
    sub.add_argument("--db", type=Path, default=DEFAULT_DB, help="accounts file (default workbench.db)")
    sub.set_defaults(run=serve)

    sub = commands.add_parser("user", help="create an account")
    sub.add_argument("name", help="user name: lower-case letters, digits, dots, dashes, underscores")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_argument("--db", type=Path, default=DEFAULT_DB, help="accounts file (default workbench.db)")
    sub.set_defaults(run=add_user)
    return top


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(parser().parse_args(argv), (AccountError, ReviewError))


if __name__ == "__main__":
    sys.exit(main())
