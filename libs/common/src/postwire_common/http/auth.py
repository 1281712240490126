"""FastAPI dependencies for the two kinds of caller.

``CurrentPrincipal``: HTTP Basic ``api_user:api_key`` of an account's API user.
``AdminAccess``: ``Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>``; the admin API answers
``authorization_failed`` to everyone while no token is configured.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Request

from postwire_common.errors import AuthorizationFailed
from postwire_common.identity import Identity, Principal


def _basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise AuthorizationFailed("send HTTP Basic credentials api_user:api_key")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthorizationFailed("malformed Basic credentials") from None
    user, sep, key = decoded.partition(":")
    if not sep or not user or not key:
        raise AuthorizationFailed("Basic credentials must be api_user:api_key")
    return user, key


async def current_principal(request: Request) -> Principal:
    identity: Identity = request.app.state.identity
    user, key = _basic_credentials(request)
    return await identity.authenticate(user, key)


async def admin_access(request: Request) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise AuthorizationFailed("the admin API is off: set POSTWIRE_ADMIN_TOKEN to enable it")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), expected):
        raise AuthorizationFailed("send Authorization: Bearer <POSTWIRE_ADMIN_TOKEN>")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminAccess = Depends(admin_access)
