"""API keys with optional per-key request rate and token quota.

Keys come from ``SUPERLAB_API_KEYS`` (comma-separated) or a file (one per line, ``#``
comments). Each entry is a key, optionally followed by limits::

    sk-team-a rpm=60 tokens=100000

``rpm``: requests per minute (sliding 60 s window), counted on every keyed route but
``/metrics``; ``tokens``: prompt + completion tokens the key may use over the server's
life. A generation request reserves its worst case (prompt tokens + n x max_tokens) before
it is queued and is refused when that does not fit what is left; the actual use is settled
when it ends, so a key's use never passes its quota, however many requests run at once.

A presented key is compared with every configured key by ``hmac.compare_digest``
(constant time, no early exit).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

ENV_VAR = "SUPERLAB_API_KEYS"


@dataclass
class ApiKey:
    """One key and its limits (None: unlimited)."""

    key: str
    rpm: int | None = None
    tokens: int | None = None
    name: str = ""  # a label for logs and metrics: never the key itself
    _times: deque[float] = field(default_factory=deque, repr=False)
    used_tokens: int = 0
    reserved_tokens: int = 0  # held by requests in flight (their worst case)


class Denied(Exception):
    """A request refused by auth or a limit: HTTP ``status`` and OpenAI error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_keys(lines: list[str], source: str) -> list[ApiKey]:
    """Parse key entries; a ValueError names the source, the line and the bad field."""
    keys = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, *opts = line.split()
        entry = ApiKey(key, name=f"key{len(keys) + 1}")
        for opt in opts:
            name, _, value = opt.partition("=")
            if name not in ("rpm", "tokens") or not value.isdigit() or int(value) < 1:
                raise ValueError(
                    f"{source}:{n}: {opt!r}: expected rpm=N or tokens=N with N a positive integer"
                )
            setattr(entry, name, int(value))
        keys.append(entry)
    return keys


def load_keys(env_value: str | None, keys_file: Path | None) -> list[ApiKey]:
    """Keys from the environment variable's value and/or the file."""
    keys = parse_keys(env_value.split(","), ENV_VAR) if env_value else []
    if keys_file is not None:
        keys += parse_keys(keys_file.read_text().splitlines(), str(keys_file))
    return keys


class KeyRing:
    """Checks a bearer token and charges its limits (thread-safe)."""

    def __init__(self, keys: list[ApiKey]) -> None:
        if not keys:
            raise ValueError(f"no API keys: set {ENV_VAR} or pass --api-keys-file")
        self.keys = keys
        self._lock = threading.Lock()

    def find(self, token: str | None) -> ApiKey:
        """The key for ``token``; ``Denied`` 401 when missing or unknown."""
        if not token:
            raise Denied(401, "missing_api_key", "no API key: send Authorization: Bearer KEY")
        found = None
        for k in self.keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(k.key.encode(), token.encode()):
                found = k
        if found is None:
            raise Denied(401, "invalid_api_key", "the API key is not valid")
        return found

    def admit(self, key: ApiKey, now: float | None = None, tokens: bool = True) -> None:
        """Count a request against the key's rate and, with ``tokens``, check that its
        token quota is not used up (429 if over either)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if tokens and key.tokens is not None and self._left(key) <= 0:
                raise Denied(429, "insufficient_quota", f"token quota of {key.tokens} used up")
            if key.rpm is not None:
                while key._times and now - key._times[0] >= 60.0:
                    key._times.popleft()
                if len(key._times) >= key.rpm:
                    raise Denied(429, "rate_limit_exceeded", f"over {key.rpm} requests/minute")
                key._times.append(now)

    def reserve(self, key: ApiKey, tokens: int) -> None:
        """Hold ``tokens`` (a request's worst case) against the quota; 429 if they do not fit."""
        with self._lock:
            if key.tokens is not None and tokens > self._left(key):
                raise Denied(
                    429,
                    "insufficient_quota",
                    f"this request may use {tokens} tokens; {max(0, self._left(key))} of the "
                    f"key's quota of {key.tokens} are left (lower max_tokens or n)",
                )
            key.reserved_tokens += tokens

    def settle(self, key: ApiKey, reserved: int, used: int) -> None:
        """Release a reservation and charge what the request used (at most what it held)."""
        with self._lock:
            key.reserved_tokens -= reserved
            key.used_tokens += min(used, reserved)

    def charge(self, key: ApiKey, tokens: int) -> None:
        """Add used tokens to the key's quota."""
        with self._lock:
            key.used_tokens += tokens

    @staticmethod
    def _left(key: ApiKey) -> int:
        assert key.tokens is not None
        return key.tokens - key.used_tokens - key.reserved_tokens
