"""Atomic file writes: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import yaml


def _default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def creation_problem(path: str | Path) -> str | None:
    """Why `path` (a folder, existing or not) cannot be created or written, or None: checks its nearest existing
    ancestor, so a bad --output-dir or save_dir is found before any work, not after training."""
    for folder in (Path(path), *Path(path).parents):
        if folder.is_symlink() and not folder.exists():  # mkdir would say only "File exists"
            try:
                folder.resolve(strict=True)
            except RuntimeError:  # Python 3.11 reports a loop this way; later versions as OSError ELOOP
                return f"'{folder}' is a symbolic link loop"
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return f"'{folder}' is a symbolic link loop"
            return f"'{folder}' is a symbolic link to '{os.readlink(folder)}', which does not exist"
        if folder.exists():
            if not folder.is_dir():
                return f"'{folder}' is a file"
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"'{folder}' is not writable"
            return None
    return None


_OS_ERROR = re.compile(r"\(os error ([0-9]+)\)")
_AT_PATH = re.compile(r'at path "([^"]+)"')


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError inside a library's own exception type (safetensors' SafetensorError says '... No space left on
    device (os error 28) at path "..."'), so a full disk gets the same one line as any other write; None if none."""
    if isinstance(exc, OSError):
        return exc
    code = _OS_ERROR.search(str(exc))
    if code is None:
        return None
    path = _AT_PATH.search(str(exc))
    return OSError(int(code.group(1)), os.strerror(int(code.group(1))), path.group(1) if path else None)


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; results are for others to open: the mode a plain open() would give
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_default) + "\n")


def write_yaml(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False, default=_default) + "\n" for r in rows)
    return atomic_write_text(path, text)


def write_jsonl_gz(path: str | Path, rows: Iterable[dict]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def file_digest(path: str | Path) -> str:
    """A file's sha256 (first 16 hex digits), hashed once per version of the file within a process. The version is
    (path, inode, size, mtime_ns, ctime_ns): a file replaced by another with the same path, size and mtime still gets
    a new ctime, which no user tool can set back."""
    p = Path(path).resolve()
    st = p.stat()
    return _digest(str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=64)
def _digest(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
