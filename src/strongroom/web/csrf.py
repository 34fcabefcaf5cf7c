"""CSRF: one random token per session, sent back with every state change.

Forms carry it in the field ``csrf_token``, API clients in the header ``X-CSRF-Token`` (only
there: the API's body is read after the permission check)
(``GET /api/v1/session`` tells it). A page on another site can make the browser send the
session cookie (SameSite=Lax already stops most of that), but it cannot read the token.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

from strongroom.errors import NotAllowed

SESSION_KEY = "strongroom_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
HEADER_ONLY = "strongroom.api"  # the API takes the token from the header, never from a body


class CsrfRefused(NotAllowed):
    """A state change without this session's CSRF token."""


def token() -> str:
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_KEY]


def check_request() -> None:
    """Refuse an unsafe request that does not carry this session's token."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None and request.blueprint != HEADER_ONLY and request.mimetype in FORM_TYPES:
        sent = request.form.get(FIELD)  # the API's bodies are not read before the permission check
    sent = sent or ""
    expected = session.get(SESSION_KEY)
    if not expected or not hmac.compare_digest(str(sent).encode(), expected.encode()):
        raise CsrfRefused("refused: the form or request lacks a valid CSRF token; reload the page and try again")
