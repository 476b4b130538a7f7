"""Source-specific text cleaning and the normalisation used to detect leaked texts."""

from __future__ import annotations

import re

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WS = re.compile(r"\s+")
_PTB = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}", "``": '"', "''": '"'}
_PTB_RE = re.compile("|".join(re.escape(k) for k in _PTB))


def clean_review(text: str) -> str:
    """IMDB: the raw reviews keep HTML line breaks (`<br />`)."""
    return _BR.sub(" ", text)


def clean_sentence(text: str) -> str:
    """SST: PTB bracket and quote tokens back to characters."""
    return _PTB_RE.sub(lambda m: _PTB[m.group(0)], text)


def clean_tweet(text: str) -> str:
    """Tweets: the cardiffnlp checkpoints were trained with mentions as '@user' and links as 'http'."""
    out = []
    for token in text.split(" "):
        if token.startswith("@") and len(token) > 1:
            token = "@user"
        elif token.startswith("http"):
            token = "http"
        out.append(token)
    return " ".join(out)


CLEANERS = {"review": clean_review, "sentence": clean_sentence, "tweet": clean_tweet,
            "plain": lambda text: text}  # your own data: whitespace only, no source-specific rules


def clean_text(text: str, kind: str, enabled: bool = True) -> str:
    if enabled:
        text = CLEANERS[kind](text)
    return _WS.sub(" ", text).strip()


def normalise(text: str) -> str:
    """Key for duplicate and leakage detection: case- and whitespace-insensitive."""
    return _WS.sub(" ", text).strip().casefold()
