"""The workbench's web pages (Sanic, Jinja2 templates with autoescaping).

Every page but the sign-in form needs a session; every form post carries a CSRF token
that must match the session's (or, for the sign-in form, the browser's sign-in cookie).
Cookies are Secure, HttpOnly and SameSite=Strict, with the `__Host-` prefix. Pages
carry no script: a strict Content-Security-Policy forbids all of it, so text a user
typed into the chat can never run here, and the pages work with the keyboard alone.
"""
import asyncio
import hmac
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Sanic
from sanic.exceptions import NotFound, SanicException
from sanic.request import Request
from sanic.response import HTTPResponse, file, html, json, redirect

from tools.conversations import FLAGS, Conversation, ReviewError, load_conversations, load_tracker, summarise
from tools.privacy import MASKED_SENDER, mask
from tools.review import import_items, relative, write_story
from workbench import candidate, charts, inbox
from workbench.accounts import Accounts

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "__Host-workbench"
SIGNIN_COOKIE = "__Host-workbench-signin"
PUBLIC = {"/signin", "/static/workbench.css"}
MAX_BODY = 64 * 1024  # bytes: the largest form is a few hundred
MAX_ROWS = 300  # conversations listed at once
MAX_DAYS = 366  # longest period the charts show
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say `Origin: null`
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass
class Settings:
    """Where the workbench reads conversations and writes what trainers decide."""

    store: Any  # the tracker store (tools.conversations.open_store)
    accounts: Accounts
    data_dir: Path  # the NLU data that corrections are added to
    stories_dir: Path  # where conversations are saved as test stories
    work_dir: Path  # candidate models and their scores
    model: Path  # the running model, to compare candidates with
    allowed_hosts: List[str]  # Host headers answered (a DNS-rebinding page gets none)


class Refused(SanicException):
    """A request the workbench will not serve, with a kind explanation."""


def create_app(settings: Settings, name: str = "workbench") -> Sanic:
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = MAX_BODY
    app.config.FORWARDED_SECRET = None
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(default=True, default_for_string=True))
    training_data_lock = threading.Lock()  # one change to the NLU files at a time

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
        session = getattr(request.ctx, "session", None)
        body = templates.get_template(template).render(
            user=session.name if session else None, csrf=session.csrf if session else "",
            path=request.path, flag_names=inbox.FLAG_NAMES, **context)
        return html(body, status=status)

    async def in_thread(function: Callable, *args: Any) -> Any:
        """Store reads and data writes block; they run beside the server's event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))

    def conversation(cid: str) -> Conversation:
        if not MASKED_SENDER.fullmatch(cid):
            raise NotFound("no such conversation")
        try:
            return summarise(load_tracker(settings.store, cid))
        except ReviewError as error:
            raise NotFound("no such conversation") from error

    # Sessions, CSRF and headers, for every request

    @app.on_request
    async def guard(request: Request) -> Optional[HTTPResponse]:
        host = (request.headers.get("host") or "").lower()
        if host not in settings.allowed_hosts:
            return html("Unknown host.", status=421)
        request.ctx.session = settings.accounts.session(request.cookies.get(SESSION_COOKIE))
        # Sanic refuses such a body before reading it, then runs this guard on an empty one.
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return page(request, "message.html", status=413, title="Too long",
                        message="That was far longer than any form here sends; nothing was changed.")
        if request.path in PUBLIC:
            pass
        elif request.ctx.session is None:
            if request.method == "GET" and not request.path.startswith("/api/"):
                return redirect("/signin")
            return page(request, "message.html", status=401, title="Please sign in",
                        message="Your session has ended. Please sign in again.")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin and origin.split("://", 1)[-1].lower() not in settings.allowed_hosts:
                return page(request, "message.html", status=403, title="Not sent from this page",
                            message="This form did not come from the workbench, so nothing was changed.")
            expected = request.ctx.session.csrf if request.ctx.session else request.cookies.get(SIGNIN_COOKIE)
            sent = (request.form or {}).get("csrf") if request.form is not None else None
            if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
                return page(request, "message.html", status=403, title="Please try again",
                            message="This form had expired or did not come from the workbench, so nothing "
                                    "was changed. Go back, reload the page and send it again.")
        return None

    @app.on_response
    async def headers(request: Request, response: HTTPResponse) -> None:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)

    @app.exception(NotFound)
    async def not_found(request: Request, error: Exception) -> HTTPResponse:
        return page(request, "message.html", status=404, title="Not found",
                    message="There is no such page or conversation (it may have been deleted by the "
                            "retention period).")

    @app.exception(Refused)
    async def refused(request: Request, error: Refused) -> HTTPResponse:
        return page(request, "message.html", status=error.status_code, title="Not done", message=str(error))

    @app.exception(Exception)
    async def failed(request: Request, error: Exception) -> HTTPResponse:
        if isinstance(error, SanicException) and error.status_code < 500:
            return page(request, "message.html", status=error.status_code, title="Not done",
                        message="The workbench could not read this request.")
        logger.exception("workbench request failed")
        return page(request, "message.html", status=500, title="Something went wrong",
                    message="Nothing was lost. Please try again; if it happens again, tell the "
                            "person who runs the workbench (the details are in its log).")

    # Signing in and out

    def set_cookie(response: HTTPResponse, name: str, value: str, max_age: Optional[int] = None) -> None:
        response.cookies[name] = value
        cookie = response.cookies[name]
        cookie["path"], cookie["httponly"], cookie["secure"], cookie["samesite"] = "/", True, True, "Strict"
        if max_age is not None:
            cookie["max-age"] = max_age

    @app.get("/signin")
    async def signin_form(request: Request) -> HTTPResponse:
        if request.ctx.session:
            return redirect("/")
        token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
        response = page(request, "signin.html", signin_csrf=token)
        set_cookie(response, SIGNIN_COOKIE, token)
        return response

    @app.post("/signin")
    async def signin(request: Request) -> HTTPResponse:
        name = (request.form.get("name") or "").strip().lower()[:64]
        password = request.form.get("password") or ""
        address = request.ip or "unknown"
        token = request.cookies.get(SIGNIN_COOKIE, "")
        wait = settings.accounts.wait_seconds(name, address)
        if wait:
            minutes = (wait + 59) // 60
            return page(request, "signin.html", status=429, signin_csrf=token, name=name,
                        error=f"Too many failed sign-ins. Please wait {minutes} minute{'s' * (minutes != 1)} "
                              f"and try again, or ask the person who runs the workbench to help.")
        session = await in_thread(settings.accounts.sign_in, name, password, address)
        if session is None:
            return page(request, "signin.html", status=401, signin_csrf=token, name=name,
                        error="That user name and password do not match. Please try again.")
        response = redirect("/")
        set_cookie(response, SESSION_COOKIE, session)
        set_cookie(response, SIGNIN_COOKIE, "", max_age=0)
        return response

    @app.post("/signout")
    async def signout(request: Request) -> HTTPResponse:
        settings.accounts.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        response = redirect("/signin")
        set_cookie(response, SESSION_COOKIE, "", max_age=0)
        return response

    @app.get("/static/workbench.css")
    async def stylesheet(request: Request) -> HTTPResponse:
        return await file(HERE / "static" / "workbench.css", mime_type="text/css")

    # The inbox and one conversation

    @app.get("/")
    async def inbox_page(request: Request) -> HTTPResponse:
        args = request.args
        since, until = inbox.parse_day(args.get("since")), inbox.parse_day(args.get("until"))
        flag = args.get("flag") if args.get("flag") in FLAGS else None
        state = args.get("state") if args.get("state") in inbox.STATES else "unreviewed"
        conversations = await in_thread(load_conversations, settings.store)
        period = inbox.in_period(inbox.rows(conversations, settings.accounts.reviewed()), since, until)
        shown = inbox.select(period, flag, state)
        return page(request, "inbox.html", rows=shown[:MAX_ROWS], total=len(shown), counts=inbox.counts(period),
                    since=since, until=until, flag=flag, state=state, flags=FLAGS, states=inbox.STATES,
                    max_rows=MAX_ROWS)

    async def transcript(request: Request, cid: str, status: int = 200, **context: Any) -> HTTPResponse:
        found = await in_thread(conversation, cid)
        labels = await in_thread(inbox.labels, settings.data_dir)
        turns = [{"text": mask(turn.text), "turn": turn} for turn in found.turns]
        return page(request, "conversation.html", status=status, cid=cid, conversation=found, turns=turns,
                    flags=found.flags(inbox.THRESHOLD), labels=labels,
                    reviewed_by=settings.accounts.reviewed().get(cid), **context)

    @app.get("/conversations/<cid>")
    async def conversation_page(request: Request, cid: str) -> HTTPResponse:
        return await transcript(request, cid)

    @app.post("/conversations/<cid>/correct")
    async def correct(request: Request, cid: str) -> HTTPResponse:
        found = await in_thread(conversation, cid)
        try:
            index = int(request.form.get("turn", ""))
            turn = found.turns[index]
        except (ValueError, IndexError):
            raise Refused("That message is not in this conversation.", status_code=400) from None
        label = " ".join((request.form.get("label") or "").split())[:200]
        if not label:
            raise Refused("Please choose an intent or FAQ topic from the list first.", status_code=400)

        def add() -> Any:
            with training_data_lock:
                return import_items([{"text": mask(turn.text), "intent": label}], settings.data_dir)

        result = await in_thread(add)
        written = [{"text": text, "intent": intent, "file": relative(path), "line": f"- {' '.join(text.split())}"}
                   for text, intent, path in result.added]
        status = 200 if written and result.valid else 422
        return await transcript(request, cid, status=status, corrected=index,
                                correction={"written": written, "refused": result.refused,
                                            "valid": result.valid, "validated": result.validate_exit is not None,
                                            "output": result.validate_output})

    @app.post("/conversations/<cid>/reviewed")
    async def mark_reviewed(request: Request, cid: str) -> HTTPResponse:
        await in_thread(conversation, cid)  # only conversations that exist
        settings.accounts.mark_reviewed(cid, request.ctx.session.name, request.form.get("reviewed") != "no")
        return redirect("/" if request.form.get("reviewed") != "no" else f"/conversations/{cid}")

    @app.post("/conversations/<cid>/story")
    async def save_story(request: Request, cid: str) -> HTTPResponse:
        await in_thread(conversation, cid)
        story = await in_thread(write_story, settings.store, cid, settings.stories_dir / f"{cid}.yml")
        return await transcript(request, cid, story={"name": story.name, "file": relative(story.path),
                                                     "text": story.text, "masked": story.masked})

    # How the assistant is doing

    @app.get("/charts")
    async def charts_page(request: Request) -> HTTPResponse:
        today = date.today()
        until = inbox.parse_day(request.args.get("until")) or today
        since = inbox.parse_day(request.args.get("since")) or until - timedelta(days=29)
        problem = None
        if since > until or (until - since).days >= MAX_DAYS:
            problem = (f"Please choose a first day before the last one, at most {MAX_DAYS} days apart; "
                       f"here are the 30 days up to {until.isoformat()}.")
            since = until - timedelta(days=29)
        conversations = await in_thread(load_conversations, settings.store)
        numbers = charts.figures(conversations, since, until)
        per_day = [(d.isoformat(), numbers.conversations[d]) for d in numbers.days]
        crisis = [(d.isoformat(), numbers.crisis.get(d, 0)) for d in numbers.days]
        rates = [("fallback", round(100 * numbers.fallback_rate, 1)),
                 ("out of scope", round(100 * numbers.out_of_scope_rate, 1)),
                 ('"not helpful"', round(100 * numbers.not_helpful_rate, 1))]
        topics = numbers.topics.most_common(20)
        return page(request, "charts.html", since=since, until=until, problem=problem, numbers=numbers,
                    per_day=per_day, crisis=crisis, rates=rates, topics=topics,
                    svg_per_day=charts.columns("Conversations per day", per_day),
                    svg_crisis=charts.columns("Crisis escalations per day", crisis),
                    svg_rates=charts.rows("Rates", rates, "%", top=100),
                    svg_topics=charts.rows("Topic mix", topics))

    # Candidate models

    def candidate_context() -> Dict[str, Any]:
        status = candidate.read_status(settings.work_dir)
        if status.get("state") == "running" and not candidate.running(settings.work_dir):
            status = {**status, "state": "failed", "error": "the training process stopped unexpectedly"}
        return {"job": status, "comparison": comparison(status.get("scores"))}

    @app.get("/candidate")
    async def candidate_page(request: Request) -> HTTPResponse:
        return page(request, "candidate.html", **candidate_context())

    @app.post("/candidate")
    async def candidate_start(request: Request) -> HTTPResponse:
        if candidate.running(settings.work_dir):
            raise Refused("A candidate model is already being trained; its progress is on the "
                          "Candidate model page.", status_code=409)
        await in_thread(candidate.start, settings.work_dir, settings.data_dir, settings.model)
        return redirect("/candidate")

    @app.get("/api/candidate")
    async def candidate_status(request: Request) -> HTTPResponse:
        status = candidate_context()["job"]
        return json({key: status.get(key) for key in ("state", "progress", "step", "error", "scores")})

    return app


MEASURES = [
    ("heldout", "crisis_recall", "Held-out: crisis recall", True),
    ("heldout", "false_alarm_rate", "Held-out: crisis false alarms", False),
    ("heldout", "topic_accuracy", "Held-out: topic accuracy", True),
]
REAL_MEASURES = [
    ("topic_accuracy", "topic answered with the right key facts", True),
    ("crisis_recall", "crisis recall", True),
    ("false_alarm_rate", "false alarms", False),
    ("out_of_scope_rate", "off-topic answered honestly", True),
]


def comparison(scores: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows of measure, running model, candidate, and whether the candidate is better."""
    if not scores or "running" not in scores or "candidate" not in scores:
        return []
    running, new = scores["running"], scores["candidate"]
    rows = [(label, running["heldout"].get(key), new["heldout"].get(key), higher)
            for _, key, label, higher in MEASURES]
    for name in new.get("realworld", {}):
        for key, label, higher in REAL_MEASURES:
            rows.append((f"Real-world {name}: {label}", running.get("realworld", {}).get(name, {}).get(key),
                         new["realworld"][name].get(key), higher))
    result = []
    for label, before, after, higher in rows:
        change = None if before is None or after is None else after - before
        verdict = "same" if not change or abs(change) < 0.0005 else (
            "better" if (change > 0) == higher else "worse")
        result.append({"measure": label, "running": before, "candidate": after, "change": change,
                       "verdict": verdict, "slug": re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")})
    return result
