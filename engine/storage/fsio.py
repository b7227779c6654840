"""Where a sweep's files live, and the file operations the engine needs on them.

A location is a local path (``Path``) or a URI string: ``s3://``, ``gs://``, ``file://``, or
anything else ``pyarrow.fs.FileSystem.from_uri`` understands, query options included
(``s3://bucket/runs?endpoint_override=localhost:9000&scheme=http``). URIs are resolved with
pyarrow's filesystems; credentials come from the filesystem's usual sources (for S3 the AWS
environment variables, ``~/.aws`` or the instance role).

Writes are atomic: on a local filesystem a temporary file beside the target is renamed over it;
on an object store (S3, GCS, Azure) the object is written in one upload, which only becomes
visible when complete; elsewhere a temporary file is moved over the target.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from pyarrow import fs as pafs

Location = Path | str
"""A local path, or a URI string (never a ``Path``: ``Path`` would fold ``s3://`` to ``s3:/``)."""

OBJECT_STORES = {"s3", "gcs", "abfs"}  # pyarrow type names of stores without real folders


def is_uri(location: Location | str) -> bool:
    return isinstance(location, str) and "://" in location


def as_location(text: Location | str) -> Location:
    """A command-line or spec string as a location: a URI stays text, a path becomes ``Path``."""
    return text if is_uri(text) else Path(text)


def join(location: Location, *parts: str) -> Location:
    """``location / part / ...``; a URI keeps its query options at the end."""
    if not is_uri(location):
        return Path(location).joinpath(*parts)
    base, sep, query = str(location).partition("?")
    tail = "/".join(p.strip("/") for p in parts if p)
    return f"{base.rstrip('/')}/{tail}{sep}{query}" if tail else str(location)


def parent(location: Location) -> Location:
    if not is_uri(location):
        return Path(location).parent
    base, sep, query = str(location).partition("?")
    return f"{base.rstrip('/').rsplit('/', 1)[0]}{sep}{query}"


def relative(location: Location, root: Location) -> str | None:
    """``location`` relative to ``root`` as a posix path, or None when it is not under it."""
    if not is_uri(location) and not is_uri(root):
        try:
            return Path(location).relative_to(root).as_posix()
        except ValueError:
            return None
    loc = str(location).partition("?")[0].rstrip("/")
    base = str(root).partition("?")[0].rstrip("/")
    return loc[len(base) + 1:] if loc.startswith(base + "/") else None


def shown(location: Location) -> str:
    """A location for messages: user and password of a URI (``s3://KEY:SECRET@b``) hidden."""
    text = str(location)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text


# ---------------------------------------------------------------------------- resolving
@lru_cache(maxsize=1024)
def _from_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    from pyarrow import fs as pafs

    return pafs.FileSystem.from_uri(uri)


@lru_cache(maxsize=1)
def _local_fs() -> pafs.FileSystem:
    from pyarrow import fs as pafs

    return pafs.LocalFileSystem()


def resolve(location: Location) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem of ``location`` and the path inside it."""
    if is_uri(location):
        return _from_uri(str(location))
    return _local_fs(), os.path.abspath(os.path.expanduser(str(location)))


def is_local(fs: pafs.FileSystem) -> bool:
    return fs.type_name == "local"


def local_path(location: Location) -> str | None:
    """The plain local path of ``location`` (a path or a ``file://`` URI), else None."""
    fs, path = resolve(location)
    return path if is_local(fs) else None


# ---------------------------------------------------------------------------- reading
def read_bytes(location: Location) -> bytes:
    """The bytes at ``location``; ``FileNotFoundError`` when missing."""
    local = local_path(location)
    if local is not None:
        with open(local, "rb") as fh:
            return fh.read()
    fs, path = resolve(location)
    with fs.open_input_stream(path) as fh:
        return fh.read()


def read_json(location: Location) -> Any | None:
    """The JSON object at ``location``, or None if missing or unreadable (e.g. torn by a kill)."""
    try:
        return json.loads(read_bytes(location))
    except (OSError, ValueError):
        return None


def read_parquet(location: Location, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet table; ``FileNotFoundError`` when missing."""
    import pandas as pd

    local = local_path(location)
    if local is not None:
        return pd.read_parquet(local, columns=columns)
    fs, path = resolve(location)
    if not exists(location):
        raise FileNotFoundError(f"{shown(location)}: no such file")
    return pd.read_parquet(path, columns=columns, filesystem=fs)


def exists(location: Location) -> bool:
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_file(location: Location) -> bool:
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def is_dir(location: Location) -> bool:
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def find_files(location: Location, name: str) -> list[str]:
    """Paths (relative to ``location``, posix, sorted as paths) of every file called ``name``
    below it; [] when ``location`` does not exist."""
    from pyarrow import fs as pafs

    fs, base = resolve(location)
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    found = []
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.File and info.base_name == name:
            found.append(posixpath.relpath(info.path.replace(os.sep, "/"),
                                           base.replace(os.sep, "/")))
    return sorted(found, key=PurePosixPath)


# ---------------------------------------------------------------------------- writing
def makedirs(location: Location) -> None:
    """Create a folder and its parents (nothing to do on an object store)."""
    fs, path = resolve(location)
    if fs.type_name not in OBJECT_STORES:
        fs.create_dir(path, recursive=True)


def atomic_write_bytes(location: Location, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never a part."""
    local = local_path(location)
    if local is not None:
        _atomic_local(Path(local), data)
        return
    fs, path = resolve(location)
    if fs.type_name in OBJECT_STORES:  # one upload: the object appears only when complete
        with fs.open_output_stream(path) as fh:
            fh.write(data)
        return
    parent_path, name = posixpath.split(path)
    fs.create_dir(parent_path, recursive=True)
    tmp = posixpath.join(parent_path, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with fs.open_output_stream(tmp) as fh:
            fh.write(data)
        fs.move(tmp, path)
    except BaseException:
        _delete_quietly(fs, tmp)
        raise


def _atomic_local(path: Path, data: bytes) -> None:
    """Temporary file beside ``path``, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(location: Location, df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(location, buf.getvalue())


def delete(location: Location) -> None:
    """Remove a file or a folder tree; nothing when it is missing."""
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif kind != pafs.FileType.NotFound:
        fs.delete_file(path)


def upload_dir(local_dir: Path, location: Location) -> None:
    """Copy every file below ``local_dir`` to the same relative paths under ``location``."""
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    makedirs(location)
    pafs.copy_files(str(local_dir), path, source_filesystem=_local_fs(),
                    destination_filesystem=fs)


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------- checks
PROBE_SECONDS = 60.0  # a store that does not answer within this is reported, not waited for


def uri_problem(location: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why files cannot be written under the URI ``location`` (None when they can): it is
    resolved and a small object is written there and deleted again."""
    try:
        fs, _ = resolve(location)
    except Exception as exc:  # noqa: BLE001 - pyarrow's reasons vary by scheme; one line
        return first_line(exc)
    if is_local(fs):
        return None  # file:// URIs are checked as local folders by the caller
    probe = join(location, f".causalmix-probe-{uuid.uuid4().hex[:12]}")
    outcome: list[BaseException | None] = []

    def write_and_delete() -> None:
        try:
            atomic_write_bytes(probe, b"")
            delete(probe)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - e.g. no such bucket, no credentials
            outcome.append(exc)

    # A thread, so that a store that retries for minutes (unreachable endpoint) is reported.
    worker = threading.Thread(target=write_and_delete, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"cannot write there (no answer within {timeout:g} s)"
    return None if outcome[0] is None else f"cannot write there ({first_line(outcome[0])})"


def first_line(exc: BaseException, limit: int = 240) -> str:
    """An exception (pyarrow's carry long multi-line texts) as one short line."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if "AWS Error " in line:  # "When ... for key 'k' in bucket 'b': AWS Error X during ..."
        line = "AWS Error " + line.split("AWS Error ", 1)[1]
    line = line.split(" (Request ID")[0].split("; Details:")[0]
    return line if len(line) <= limit else line[:limit] + "..."


@contextmanager
def staged(location: Location, create: bool = True) -> Iterator[Path]:
    """A local folder to write ``location``'s files in: the folder itself when local (made
    when ``create``), else a temporary folder whose files are uploaded to ``location`` when
    the block ends normally (used for the report's HTML, figures and TensorBoard files)."""
    local = local_path(location)
    if local is not None:
        if create:
            Path(local).mkdir(parents=True, exist_ok=True)
        yield Path(local)
        return
    with tempfile.TemporaryDirectory(prefix="causalmix-stage-") as tmp:
        yield Path(tmp)
        upload_dir(Path(tmp), location)
