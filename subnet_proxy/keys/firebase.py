"""Firebase ID tokens: the credential a web app's signed-in users present instead of an API key.

``FirebaseVerifier.verify(token)`` checks a token with firebase-admin (signature against Google's
public keys, audience and issuer = the configured project, expiry; with ``firebase_check_revoked``
also revocation and disabled users) and returns the caller as an ``ApiKey`` record, so every route
that reads the caller's key (ownership, limits, roles) serves Firebase users unchanged:

    key_id  ``fb:<uid>``: API key ids are ``k_...``/``seed_...``, so a uid never names a key's tasks
    role    the custom claim ``role`` (``admin``, ``client``, ``viewer``); absent: client

firebase-admin is synchronous and may fetch Google's public keys (the only outbound call it makes
without the revocation check; the keys are cached by their HTTP Cache-Control), so checks run on a
small pool of their own, each bounded by ``firebase_timeout_s``: a stalled fetch cannot hold the
event loop or the default executor. A verified token is remembered until it expires (at most
``REVOCATION_CACHE_S`` when revocation is checked), so a client's requests cost one check a token.

With ``FIREBASE_AUTH_EMULATOR_HOST`` set, firebase-admin accepts the Auth emulator's unsigned tokens
and skips its own expiry check along with the signature; the expiry check here applies in both.

    TokenRejected          the token is not a valid, current ID token of the project (401)
    AuthUnavailable        the check could not be made (keys not fetched, Auth API down): 503
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from subnet_proxy.config import AuthSettings
from subnet_proxy.extras import MissingExtra
from subnet_proxy.keys.base import ApiKey, Role

#: the owner prefix of a Firebase user's tasks.
FIREBASE_OWNER_PREFIX = "fb:"
#: seconds a verified token is trusted without asking Firebase again, when revocation is checked.
REVOCATION_CACHE_S = 5.0
#: tolerated difference between this machine's clock and Google's, for ``iat``/``exp``.
CLOCK_SKEW_S = 5
_CACHE_MAX = 10_000
_EXPIRED = "the Firebase ID token has expired: get a fresh one from the Firebase client SDK (user.getIdToken())"
_WORKERS = 4

Reason = Literal["expired", "revoked", "disabled", "invalid"]


class TokenRejected(Exception):
    """The token is not accepted; ``reason`` tells a client whether fetching a fresh token helps."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthUnavailable(Exception):
    """Firebase could not be asked (Google's keys or the Auth API out of reach, or too slow)."""


def looks_like_jwt(token: str) -> bool:
    """A JWT is three base64url parts whose header is a JSON object (``eyJ`` = ``{"``); API keys never are."""
    return token.startswith("eyJ") and token.count(".") == 2


def _role(claims: dict[str, Any]) -> Role:
    value = claims.get("role", Role.CLIENT.value)
    try:
        return Role(value)
    except ValueError:
        raise TokenRejected("invalid", f"the token's 'role' claim {str(value)[:32]!r} is none of: "
                            f"{', '.join(r.value for r in Role)}") from None


def caller_of(claims: dict[str, Any], *, now: float) -> tuple[ApiKey, float]:
    """(the caller, the token's expiry as a Unix time) from verified claims; an expired token raises."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenRejected("invalid", "the Firebase ID token has no 'exp' claim")
    if exp + CLOCK_SKEW_S < now:
        raise TokenRejected("expired", _EXPIRED)
    auth_time = claims.get("auth_time", claims.get("iat", now))
    created = datetime.fromtimestamp(auth_time if isinstance(auth_time, int | float) else now, UTC)
    uid = str(claims["uid"])
    # key_hash stays empty: a Firebase caller is never looked up by hash, only built from its token
    caller = ApiKey(key_id=FIREBASE_OWNER_PREFIX + uid, name=str(claims.get("email") or "firebase user"),
                    role=_role(claims), key_hash="", created_at=created)
    return caller, float(exp)


class FirebaseVerifier:
    """Checks one project's ID tokens; ``close`` releases its firebase-admin app and threads."""

    def __init__(self, settings: AuthSettings) -> None:
        if settings.firebase_project is None:
            raise ValueError("FirebaseVerifier needs --auth.firebase_project")
        try:
            import firebase_admin
            from firebase_admin import auth, exceptions
            from google.auth.credentials import AnonymousCredentials
        except ImportError as exc:
            raise MissingExtra("firebase", ["firebase_admin"], who="side-server with --auth.firebase_project") from exc
        self._settings = settings
        self._firebase_admin = firebase_admin
        self._auth = auth
        self._errors = exceptions
        # verifying a token needs only Google's public keys; the revocation check calls the Auth API as
        # the service account, so only then are the application default credentials loaded
        credential = None if settings.firebase_check_revoked else AnonymousCredentials()
        self._app = firebase_admin.initialize_app(credential, {"projectId": settings.firebase_project},
                                                  name=f"subnet-proxy-{uuid.uuid4().hex}")
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="firebase-auth")
        self._cache: dict[str, tuple[ApiKey, float]] = {}

    async def verify(self, token: str) -> ApiKey:
        """The token's caller, or TokenRejected / AuthUnavailable."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        loop = asyncio.get_running_loop()
        try:
            claims = await asyncio.wait_for(loop.run_in_executor(self._pool, self._check, token),
                                            self._settings.firebase_timeout_s)
        except TimeoutError:
            raise AuthUnavailable(f"Firebase did not answer within {self._settings.firebase_timeout_s:g} s") from None
        caller, exp = caller_of(claims, now=time.time())
        trusted_s = exp - time.time()
        if self._settings.firebase_check_revoked:
            trusted_s = min(trusted_s, REVOCATION_CACHE_S)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (caller, now + trusted_s)
        return caller

    def _check(self, token: str) -> dict[str, Any]:
        """firebase-admin's check (in a pool thread), its errors sorted into ours."""
        auth = self._auth
        try:
            claims: dict[str, Any] = auth.verify_id_token(token, app=self._app, clock_skew_seconds=CLOCK_SKEW_S,
                                                          check_revoked=self._settings.firebase_check_revoked)
            return claims
        except auth.ExpiredIdTokenError:
            raise TokenRejected("expired", _EXPIRED) from None
        except auth.RevokedIdTokenError:
            raise TokenRejected("revoked", "the Firebase ID token was revoked: sign in again") from None
        except auth.UserDisabledError:
            raise TokenRejected("disabled", "this Firebase user is disabled") from None
        except auth.UserNotFoundError:
            raise TokenRejected("invalid", "no such Firebase user") from None
        except (auth.InvalidIdTokenError, ValueError) as exc:
            raise TokenRejected("invalid", f"not a valid Firebase ID token for project "
                                f"{self._settings.firebase_project}: {str(exc)[:300]}") from None
        except self._errors.FirebaseError as exc:  # keys not fetched, Auth API down
            raise AuthUnavailable(f"cannot check Firebase ID tokens now: {str(exc)[:300]}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._firebase_admin.delete_app(self._app)
