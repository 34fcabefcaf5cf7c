"""CSRF: a token per session and signed-in identity, sent back with every state change.

The session keeps a random secret, which is never sent as a token itself. The token is an
HMAC of who ``current_user()`` says is there (nobody, or the user's name) under that
secret, so it does not lean on the host's session hygiene: a token issued before sign-in
is not valid once someone has signed in on that session, and one issued to one user is not
valid for another, whether or not the host starts a new session at sign-in.

Forms carry it in the field ``csrf_token``, API clients in the header ``X-CSRF-Token`` (only
there: the API's body is read after the permission check)
(``GET /api/v1/session`` tells it). A page on another site can make the browser send the
session cookie (SameSite=Lax already stops most of that), but it cannot read the token.

Who is there comes from the app's ``IDENTITY`` extension (the blueprint installs it):
``""`` for nobody, the user's name otherwise, or None while a site restore replaces the
users, whose records are then not read: then a token of the right form is let through,
as the request is refused by the maintenance guard right after (503, or 409 in the API).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from flask import current_app, g, request, session

from strongroom.errors import NotAllowed

SESSION_KEY = "strongroom_csrf"  # the session's secret
IDENTITY = "strongroom_csrf_identity"  # the app's extension: () -> "" | user name | None
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
HEADER_ONLY = "strongroom.api"  # the API takes the token from the header, never from a body
TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]{43}\Z")  # 32 bytes, base64url without padding
PURPOSE = b"strongroom csrf token\0"


class CsrfRefused(NotAllowed):
    """A state change without this session's CSRF token for the one who is signed in."""


def token() -> str:
    """The token for this session and who is signed in ("" while a site restore runs:
    nothing can be sent then)."""
    identity = _identity()
    if identity is None:
        return ""
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(32)
    return _token_for(session[SESSION_KEY], identity)


def _token_for(secret: str, identity: str) -> str:
    who = b"user:" + identity.encode("utf-8", "surrogatepass") if identity else b"nobody"
    digest = hmac.new(secret.encode(), PURPOSE + who, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _identity() -> str | None:
    """Who is there, once per request (``IDENTITY``; nobody where no blueprint installed it)."""
    if "strongroom_csrf_identity" not in g:
        found = current_app.extensions.get(IDENTITY)
        g.strongroom_csrf_identity = found() if found else ""
    return g.strongroom_csrf_identity


def check_request() -> None:
    """Refuse an unsafe request that does not carry the token of this session and user."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None and request.blueprint != HEADER_ONLY and request.mimetype in FORM_TYPES:
        sent = request.form.get(FIELD)  # the API's bodies are not read before the permission check
    sent, secret = str(sent or ""), session.get(SESSION_KEY)
    if secret and sent and _valid(sent, secret):
        return
    raise CsrfRefused("refused: the form or request lacks a valid CSRF token; reload the page and try again")


def _valid(sent: str, secret: str) -> bool:
    identity = _identity()
    if identity is None:
        return TOKEN_FORM.match(sent) is not None
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), _token_for(secret, identity).encode())
