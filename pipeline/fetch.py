"""Resumable, verified HTTPS downloads.

The file grows as `<dest>.part` beside its destination. An interrupted download
(a dropped connection, a laptop going to sleep, Ctrl-C) keeps what it received,
and the next try asks the server only for the rest (HTTP Range). The part becomes
`dest` only once the whole file's sha256 matches; a mismatch deletes it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm import tqdm

from pipeline import files
from pipeline.cli import UserError

RETRY_DELAYS = (1, 2, 4, 8)  # seconds to wait before each retry: 5 tries within 15 s
_READ_BYTES = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")


class DownloadError(UserError):
    """The server or the network failed us, or sent the wrong bytes."""


class _Transient(Exception):
    """A failure another try may not have: timeout, dropped connection, truncated body, HTTP 5xx."""


def fetch(
    url: str,
    dest: Path,
    sha256: str,
    *,
    timeout: float = 60,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """dest holding the file at url, checked against its sha256; downloads only what is missing.

    Concurrent callers (two clones, queued experiments) take turns on a lock beside
    dest, so the second one finds the first one's verified file instead of
    writing into the same part file.
    """
    with files.write_errors_named(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if dest.exists():
            if file_sha256(dest) == sha256:
                print(f"using the verified download in {dest}")
                return dest
            print(f"{dest} does not match its sha256: downloading it again", file=sys.stderr)
            dest.unlink()
        part = partial_path(dest)
        _download_with_retries(url, part, timeout, retry_delays, sleep)
        _verify(part, sha256, url)
        with files.write_errors_named(dest):
            part.replace(dest)
    return dest


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with files.write_errors_named(lock_path):
        lock = open(lock_path, "a")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def _download_with_retries(url, part: Path, timeout, retry_delays, sleep) -> None:
    tries = len(retry_delays) + 1
    for attempt in range(tries):
        try:
            _download_rest(url, part, timeout)
            return
        except _Transient as error:
            if attempt == len(retry_delays):
                raise DownloadError(
                    f"download of {url} failed after {tries} tries: {error}{_kept(part)}"
                ) from None
            delay = retry_delays[attempt]
            print(f"download interrupted ({error}); try {attempt + 2} of {tries} in {delay} s", file=sys.stderr)
            sleep(delay)


def _kept(part: Path) -> str:
    size = part.stat().st_size if part.exists() else 0
    return f"; the {size:,} bytes received are kept in {part} and the next run resumes from there" if size else ""


def _download_rest(url: str, part: Path, timeout: float) -> None:
    """One request for what the part file lacks; the whole file if the server ignores the range."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = _opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return  # the part already holds the whole file: the sha256 decides
        raise _classified(url, error) from None
    except (OSError, http.client.HTTPException) as error:
        raise _classified(url, error) from None
    with response:
        mode, length = _resumed_or_restarted(response, offset, part)
        received = 0
        initial = offset if mode == "ab" else 0
        with files.write_errors_named(part), open(part, mode) as out, _progress(length, initial) as bar:
            for chunk in _body(url, response):
                out.write(chunk)
                out.flush()  # a kill or a dropped connection keeps everything received so far
                received += len(chunk)
                bar.update(len(chunk))
    if length is not None and received < length:
        raise _Transient(f"the connection closed after {received:,} of {length:,} bytes")


def _resumed_or_restarted(response, offset: int, part: Path) -> tuple[str, int | None]:
    """How to open the part file ("ab" to append, "wb" to start over) and the body's length."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if response.status != 206:
        return "wb", length  # no range asked, or the server ignored it: this is the whole file
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(content_range)
    if not match or int(match[1]) != offset:
        part.unlink(missing_ok=True)
        raise _Transient(f"asked for bytes from {offset:,}, the server sent {content_range!r}; starting over")
    return "ab", length


def _body(url: str, response) -> Iterator[bytes]:
    try:
        while chunk := response.read(_READ_BYTES):
            yield chunk
    except (OSError, http.client.HTTPException) as error:
        raise _classified(url, error) from None


def _progress(length: int | None, initial: int) -> tqdm:
    total = initial + length if length is not None else None
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc="download", mininterval=1)


def _classified(url: str, error: Exception) -> Exception:
    """Whether another try may help: not for 4xx, bad certificates or refused redirects."""
    if isinstance(error, urllib.error.HTTPError):
        reason = f"HTTP {error.code} {error.reason}"
        return _Transient(reason) if error.code >= 500 else DownloadError(f"download of {url} failed: {reason}")
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, ssl.SSLCertVerificationError):
        why = reason.verify_message
        return DownloadError(f"download of {url} failed: the server's certificate is not trusted ({why})")
    return _Transient(_describe(reason))


def _describe(error) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _verify(part: Path, sha256: str, url: str) -> None:
    got = file_sha256(part)
    if got != sha256:
        part.unlink()
        raise DownloadError(
            f"download of {url} is corrupt: sha256 {got}, expected {sha256}; "
            "the file was discarded, the next run downloads it again"
        )


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within the configured scheme, host and port."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != _origin(req.full_url):
            raise DownloadError(
                f"download of {req.full_url} was redirected to {newurl}; refusing to contact another host"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


def _opener() -> urllib.request.OpenerDirector:
    # An explicit default context verifies certificates and host names even if the
    # process's default HTTPS context has been replaced with an unverified one.
    https = urllib.request.HTTPSHandler(context=ssl.create_default_context())
    return urllib.request.build_opener(https, _SameOriginRedirects)
