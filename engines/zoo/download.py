"""Download model files into the cache: resumable, verified, atomic, safe between processes.

A file is fetched into ``<cache>/models/<name>.part`` under an exclusive lock
(``<name>.lock``), so two processes asking for one model at once download it once: the second
waits, then finds the file in place. A transfer cut in the middle resumes from what arrived
(an HTTP range request) or, when the server cannot resume, starts again. The finished file is
checked (its SHA-256 where one is pinned, the given prefix of it where the URL carries one, and
the caller's structural check), then renamed into place, and the SHA-256 it had is kept beside
it (``<name>.sha256``). A cached file that no longer has that SHA-256 is refused and fetched
again. A file that fails a check is deleted, and the error says why.

``$DETSTREAM_MODEL_MIRROR`` replaces the base of every URL: a mirror is a flat folder holding
each file under its own name (``$DETSTREAM_MODEL_MIRROR/yolox_nano.onnx``) behind any web
server, which is how air-gapped sites serve models. Nothing here touches the network until a
download is asked for.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from detstream.engines.cache import cache_root, file_sha256, write_atomic
from detstream.engines.errors import UserInputError

MIRROR_ENV = "DETSTREAM_MODEL_MIRROR"
ATTEMPTS = 4
CHUNK = 1 << 16
Log = Callable[[str], None]
Check = Callable[[Path], None]


def models_dir() -> Path:
    return cache_root() / "models"


def download_url(url: str, file_name: str) -> str:
    """``url``, or ``$DETSTREAM_MODEL_MIRROR/<file_name>`` when a mirror is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{file_name}" if mirror else url


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cached_file(file_name: str) -> Path | None:
    """The cached file when it is there and still has the SHA-256 it was verified with."""
    path = models_dir() / file_name
    if not path.is_file() or not _sidecar(path).is_file():
        return None
    return path if file_sha256(path) == _sidecar(path).read_text().strip() else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process fetching ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _transfer(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (from its current size), or rewrite it when the
    server sends the whole file. Raises on a cut or a short transfer."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "detstream"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is whole (or wrong)
            return
        raise
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = (have if resumed else 0) + expected if expected is not None else None
        bar = _progress_bar(part.name.removesuffix(".part"), total, have if resumed else 0,
                            progress)
        received = 0
        with open(part, "ab" if resumed else "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
                received += len(block)
                bar.update(len(block))
        bar.close()
    if expected is not None and received < expected:
        raise http.client.IncompleteRead(b"", expected - received)


def _progress_bar(label: str, total: int | None, initial: int, enabled: bool):
    from detstream.engines.progress import progress_bar

    return progress_bar(total=total, initial=initial, unit="B", unit_scale=True,
                        unit_divisor=1024, desc=f"downloading {label}", disable=not enabled)


def fetch(url: str, file_name: str, sha256: str | None = None, hash_prefix: str | None = None,
          check: Check | None = None, log: Log | None = None, progress: bool = True) -> Path:
    """The cached ``file_name``, downloaded from ``url`` (or the mirror) first when needed.

    Args:
        url: where the file is published.
        file_name: its name in the cache and on a mirror.
        sha256: the pinned SHA-256, when known.
        hash_prefix: a prefix the SHA-256 must start with (torchvision puts one in its
            file names).
        check: a structural check that raises :class:`UserInputError` on a bad file.
        log: where notes go (a re-fetch of a changed file).
        progress: a progress bar on a terminal.

    Raises:
        UserInputError: the file cannot be fetched (with where to get it and where to put
            it), or it fails a check (it is deleted).
    """
    log = log or (lambda message: None)
    path = models_dir() / file_name
    with _locked(path):
        if cached_file(file_name) is not None:
            return path
        if path.is_file():
            log(f"note: the cached {file_name} changed since it was verified; fetching it again")
            path.unlink()
        source = download_url(url, file_name)
        part = path.with_name(file_name + ".part")
        _download(source, part, file_name, path, progress)
        digest = file_sha256(part)
        problem = ""
        if sha256 and digest != sha256:
            problem = f"its SHA-256 is {digest}, expected {sha256}"
        elif hash_prefix and not digest.startswith(hash_prefix):
            problem = f"its SHA-256 {digest} does not start with {hash_prefix}"
        if problem:
            part.unlink(missing_ok=True)
            raise UserInputError(f"the download of {file_name} from {source} failed its check "
                                 f"({problem}); it was deleted. Fetch it again or fix the "
                                 "mirror")
        if check is not None:
            try:
                check(part)
            except UserInputError as exc:
                part.unlink(missing_ok=True)
                raise UserInputError(f"the download of {file_name} from {source} is not the "
                                     f"expected model ({exc}); it was deleted") from None
        os.replace(part, path)
        write_atomic(_sidecar(path), digest + "\n")
    return path


def _download(source: str, part: Path, file_name: str, path: Path, progress: bool) -> None:
    """Fetch ``source`` into ``part``, resuming after cuts, with one clear error at the end."""
    where = (f"put {file_name} at {path}, serve it from a folder named by ${MIRROR_ENV}, or "
             "pass --weights PATH")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(source, part, progress)
            return
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 403, 401, 410):
                raise UserInputError(f"cannot download {file_name}: {source} answered "
                                     f"{exc.code} {exc.reason}; {where}") from None
            reason = f"{exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
            if isinstance(exc, urllib.error.URLError) and not part.is_file():
                # Nothing arrived at all: offline, a wrong host, or no such server.
                if attempt == ATTEMPTS or _unreachable(exc):
                    raise UserInputError(f"cannot download {file_name} from {source} "
                                         f"({reason}); {where}") from None
        if attempt < ATTEMPTS:
            time.sleep(0.2 * attempt)
    raise UserInputError(f"cannot download {file_name} from {source} after {ATTEMPTS} tries "
                         f"({reason}); {where}")


def _unreachable(exc: urllib.error.URLError) -> bool:
    """No retry helps: name resolution failed or the connection was refused."""
    reason = getattr(exc, "reason", None)
    return isinstance(reason, OSError) and not isinstance(reason, TimeoutError)
