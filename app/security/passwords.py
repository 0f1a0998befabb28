"""Password hashing with Argon2id (argon2-cffi's RFC 9106 low-memory profile) and one-time passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, time_cost=3, memory_cost=64 MiB, parallelism=4 (library defaults)
#: A real hash of a random password: verifying unknown users against it takes as long as a real check,
#: so response time does not tell which usernames exist.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    """An Argon2id hash of the password."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether the password matches (constant work whether or not the user exists)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    """A random password to hand out once (20 URL-safe characters, ~120 bits)."""
    return secrets.token_urlsafe(15)
