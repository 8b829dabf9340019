"""Login and API tokens, without Flask: password checks, the session secret, tokens, and a login rate limiter.

Auth is on exactly when MS_PASSWORD or MS_PASSWORD_HASH is set. Then a browser proves itself with a signed
session cookie (signed with a random secret generated once into the data dir) and a script with
``Authorization: Bearer <token>``, where only the SHA-256 of each token is stored in the database.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time

from werkzeug.security import check_password_hash, generate_password_hash

from config import Settings, SettingsError
from materialsearch.catalog.tokens import TokenInfo, TokenStore

SECRET_FILENAME = "secret_key"  # inside MS_DATA_DIR
SECRET_BYTES = 32
TOKEN_PREFIX = "mst_"
TOKEN_NAME_MAX = 64
# A token's last use is written at most this often, so API traffic does not turn into a stream of DB writes.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=10)
PASSWORD_HASH_METHODS = ("scrypt", "pbkdf2")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in werkzeug's format, for MS_PASSWORD_HASH."""
    if not password:
        raise ValueError("the password is empty")
    return generate_password_hash(password, method="scrypt")


def load_or_create_secret(data_dir: str) -> bytes:
    """The session-signing secret: random, made once and kept (mode 0600) in the data dir."""
    path = os.path.join(data_dir, SECRET_FILENAME)
    os.makedirs(data_dir, exist_ok=True)
    if not os.path.exists(path):
        # Write a temp file fully, then hard-link it into place: link() fails if another process won the race,
        # and nobody ever reads a half-written secret.
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_BYTES))
            # Another process may have won the race: then its secret is the one kept.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    with open(path, "rb") as handle:
        secret = handle.read()
    if len(secret) < SECRET_BYTES:
        raise SettingsError(f"{path} is damaged ({len(secret)} bytes); delete it and a new one will be made")
    return secret


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex (a token has 256 random bits, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _valid_token_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > TOKEN_NAME_MAX or not name.isprintable():
        raise ValueError(f"a token name must be 1-{TOKEN_NAME_MAX} printable characters")
    return name


def create_token(tokens: TokenStore, name: str) -> str:
    """Make a new API token called ``name``; returns the token, which is not stored and cannot be shown again."""
    name = _valid_token_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tokens.add(name, hash_token(token))
    return token


def revoke_token(tokens: TokenStore, name: str) -> bool:
    """Delete the token called ``name``; False when there is none."""
    return tokens.delete(name.strip())


def find_token(tokens: TokenStore, token: str) -> TokenInfo | None:
    """The stored token matching ``token``, compared in constant time against every stored hash."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    wanted = hash_token(token)
    found = None
    for info in tokens.all():
        # No early exit: every hash is compared, so timing says nothing about which one matched.
        if hmac.compare_digest(info.token_hash, wanted):
            found = info
    return found


class RateLimiter:
    """Counts failures per key (a client address) in a sliding window; thread-safe, in memory, bounded."""

    def __init__(self, attempts: int, window_s: float, max_keys: int = 10000, clock=time.monotonic):
        self.attempts = attempts
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def _recent(self, key: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.attempts:
                return 0
            return max(1, int(times[0] + self.window_s - now + 0.999))

    def fail(self, key: str) -> None:
        """Record a failed attempt by ``key``."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = collections.deque(maxlen=self.attempts)
            times.append(now)
            self._failures.move_to_end(key)
            # A flood of distinct addresses must not grow memory without bound: forget the stalest keys.
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful login)."""
        with self._lock:
            self._failures.pop(key, None)


class Authenticator:
    """Everything auth needs at request time, built once per app from the settings and the token records."""

    def __init__(self, settings: Settings, tokens: TokenStore):
        self.settings = settings
        self.tokens = tokens
        if settings.password and settings.password_hash:
            raise SettingsError("set MS_PASSWORD or MS_PASSWORD_HASH, not both")
        if settings.password_hash and settings.password_hash.split(":", 1)[0] not in PASSWORD_HASH_METHODS:
            raise SettingsError(
                "MS_PASSWORD_HASH is not a password hash: make one with `python -m materialsearch hash-password`"
            )
        self.enabled = bool(settings.password or settings.password_hash)
        self.secret = load_or_create_secret(settings.data_dir)
        self.limiter = RateLimiter(settings.login_attempts, settings.login_window)
        credential = settings.password_hash or hashlib.sha256(settings.password.encode("utf-8")).hexdigest()
        # Sessions carry this stamp; it changes with the password, so a new password logs every browser out.
        self.session_stamp = hmac.new(self.secret, b"session\0" + credential.encode(), hashlib.sha256).hexdigest()

    def check_password(self, candidate: str) -> bool:
        """Whether ``candidate`` is the password (constant-time comparison)."""
        if not self.enabled:
            return False
        if self.settings.password_hash:
            return check_password_hash(self.settings.password_hash, candidate)
        # Compare digests, so the time taken does not depend on where the strings differ or on their lengths.
        given = hashlib.sha256(candidate.encode("utf-8")).digest()
        expected = hashlib.sha256(self.settings.password.encode("utf-8")).digest()
        return hmac.compare_digest(given, expected)

    def session_valid(self, stamp: object) -> bool:
        """Whether a session's stamp was issued for the current password."""
        return isinstance(stamp, str) and hmac.compare_digest(stamp, self.session_stamp)

    def verify_token(self, token: str) -> TokenInfo | None:
        """The token's record when ``token`` is a valid API token (and note its use), else None."""
        info = find_token(self.tokens, token)
        if info is not None:
            now = dt.datetime.now().replace(microsecond=0)
            if info.last_used_at is None or now - info.last_used_at >= TOKEN_TOUCH_INTERVAL:
                self.tokens.touch(info.id, now)
        return info


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(settings: Settings) -> str | None:
    """A start-up warning when the server listens beyond this machine with no password set."""
    if settings.password or settings.password_hash or is_loopback(settings.host):
        return None
    return (
        f"MS_HOST={settings.host} lets other machines connect, and no password is set: anyone who can reach "
        f"port {settings.port} can see every photo in the library. Set MS_PASSWORD (or MS_PASSWORD_HASH)."
    )
