"""One redaction for every string that leaves the process: files, logs, warnings, errors, tracker params.

A leaf module (imports nothing of ours), so config, logging and the trackers can all use it.
Covered: `user:password@` in any URL scheme (passwords holding '@' or '/', empty users),
secret-named query parameters (`?token=`, `&api_key=`, ...), and values of secret-named keys
(TOKEN / KEY / SECRET / PASSWORD) in mappings.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
MASK = "***"

# scheme://[user]:password@host - the password runs to the last '@' before the host, so '@' and '/' inside it
# are covered; the host part has neither '@' nor whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^\s]*)@(?P<host>[^@\s/]+)")
_SECRET_QUERY = re.compile(r"(?P<key>[?&;][^=&\s#]*(?:token|key|secret|password|passwd|pwd|auth|signature|sig)"
                           r"[^=&\s#]*=)(?P<value>[^&\s#]+)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def redact_text(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@{m['host']}", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{MASK}", text)


def redact(value: Any, key: str = "") -> Any:
    """Values of secret-named keys become '***'; every string has URL passwords and secret query values masked."""
    if key and is_secret_name(key) and value not in (None, ""):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record (message and arguments) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True
