"""Real receivers on loopback for the notification tests: an HTTP server for the webhook (stdlib
`http.server` in a thread) and an SMTP server (aiosmtpd). Each records what arrived."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Posted:
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    """POSTs to any path are recorded; the next `fail_next` requests get a 503 (recorded too, in
    `refused`). `start()` and `stop()` may be called again: a receiver that is down and comes back."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Posted] = []
        self.refused: list[Posted] = []
        self.fail_next = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hooks/solar"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                posted = Posted(dict(self.headers), json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= failing
                    (receiver.refused if failing else receiver.received).append(posted)
                self.send_response(503 if failing else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> list[str]:
        return [posted.headers["Idempotency-Key"] for posted in self.received]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class _Recorder:
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


class MailReceiver:
    """An SMTP server on loopback that keeps every message; with `login`, it requires AUTH LOGIN/PLAIN
    with that (user, password) (over plain text: loopback only)."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self._recorder = _Recorder()
        options: dict[str, Any] = {}
        if login is not None:
            def authenticate(server: object, session: Session, envelope: Envelope, mechanism: str,
                             auth_data: object) -> AuthResult:
                ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(),
                                                               auth_data.password.decode()) == login
                return AuthResult(success=ok, handled=False)  # False: the server answers 535

            options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(self._recorder, hostname=HOST, port=self.port, **options)

    @property
    def mails(self) -> list[Mail]:
        return self._recorder.mails

    def start(self) -> MailReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
