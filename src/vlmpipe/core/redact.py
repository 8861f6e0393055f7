"""Redaction of secrets in text that may reach the store, logs or reports (error messages, server bodies).

Two layers: the exact values of the run's keys are replaced wherever they appear, and anything shaped like
an ``Authorization`` header or a bearer token is masked even when its value is not one of ours (a proxy
echoing another credential back in an error body).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_AUTH_HEADER = re.compile(
    r"(?i)(authorization\\?[\"']?\s*[:=]\s*\\?[\"']?\s*)(?:(bearer|basic|token)\s+)?[^\s\"'\\,;}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}")
_API_KEY_FIELD = re.compile(r"(?i)((?:api[_-]?key|x-api-key)\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'\\,;}]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and every Authorization/bearer/api-key value replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _API_KEY_FIELD.sub(lambda m: m.group(1) + MASK, text)
