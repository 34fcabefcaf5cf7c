"""Monitoring pings, in the convention of healthchecks-style services.

A scheduled run reports to a URL the operator got from the monitoring service: a POST to
``URL/start`` when it begins, to ``URL`` when it succeeds and to ``URL/fail`` when it
fails, each with a one-line body saying what happened. The service then notices a run
that failed, and (since it expects a ping on schedule) one that never ran.

A ping is a courtesy to monitoring, never part of the operation: one that fails (no
network, a timeout, an HTTP error) never changes the command's outcome or its exit code.
``Pinger`` says so once, through ``warn``, and goes on trying the later pings of the run.
Only ``http`` and ``https`` URLs are accepted (a ``file:`` URL would read files).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from strongroom.errors import BadInput

TIMEOUT = 10  # seconds per ping: a monitoring service that hangs must not hold a backup up
MAX_BODY = 1000  # characters: the outcome line, not a report


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; ``BadInput`` otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(f"the ping URL must be an http:// or https:// URL, not {url!r}")
    return url


def ping_url(url: str, kind: str) -> str:
    """The URL of one ping: ``kind`` is ``start``, ``success`` or ``fail``."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    if kind != "success":
        path = f"{path}/{kind}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


class Pinger:
    """Sends the pings of one run; ``warn(message)`` is told of the first that fails."""

    def __init__(self, url: str, warn: Callable[[str], None], timeout: float = TIMEOUT):
        self.url = check_url(url)
        self.warn = warn
        self.timeout = timeout
        self.warned = False

    def start(self, what: str) -> bool:
        return self._send("start", what)

    def success(self, what: str) -> bool:
        return self._send("success", what)

    def fail(self, what: str) -> bool:
        return self._send("fail", what)

    def _send(self, kind: str, body: str) -> bool:
        """True if the ping was answered with a 2xx; never raises an error of its own."""
        import urllib.error  # here: urllib.request and http.client cost every command ~20 ms to import
        import urllib.request

        target = ping_url(self.url, kind)
        data = " ".join(body.split())[:MAX_BODY].encode("utf-8")
        request = urllib.request.Request(target, data=data, method="POST",
                                         headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # the scheme is checked: http(s) only
                response.read(1024)
            return True
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if not self.warned:
                self.warned = True
                reason = getattr(exc, "reason", None) or exc
                self.warn(f"could not report to the monitoring URL ({kind} ping): {reason}; "
                          "the command's outcome is not changed")
            return False
