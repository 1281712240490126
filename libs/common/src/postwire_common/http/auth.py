"""FastAPI dependencies for the two kinds of caller, checked before anything else.

``CurrentPrincipal``: HTTP Basic ``api_user:api_key`` of an account's API user.
``AdminAccess``: ``Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>``; the admin API answers
``authorization_failed`` to everyone while no token is configured.

Routes check these before they read the body (``postwire_common.http.routes``). Every
malformed credential (bad base64, bytes that are not UTF-8, control characters)
is an ``authorization_failed``, never an error of ours.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Request

from postwire_common.errors import AuthorizationFailed
from postwire_common.identity import Identity, Principal
from postwire_common.text import has_control


def _basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise AuthorizationFailed("send HTTP Basic credentials api_user:api_key")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # not base64 (or not ASCII), or not UTF-8
        raise AuthorizationFailed("malformed Basic credentials") from None
    user, sep, key = decoded.partition(":")
    if not sep or not user or not key:
        raise AuthorizationFailed("Basic credentials must be api_user:api_key")
    if has_control(user) or has_control(key):
        raise AuthorizationFailed("wrong api_user or api_key")
    return user, key


async def current_principal(request: Request) -> Principal:
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    identity: Identity = request.app.state.identity
    user, key = _basic_credentials(request)
    principal = await identity.authenticate(user, key)
    request.state.principal = principal
    return principal


async def admin_access(request: Request) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise AuthorizationFailed("the admin API is off: set POSTWIRE_ADMIN_TOKEN to enable it")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    # Compared as bytes: a header is any Latin-1 text, and compare_digest takes only
    # ASCII str.
    given = value.strip().encode("utf-8", "surrogatepass")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
        raise AuthorizationFailed("send Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminAccess = Depends(admin_access)
