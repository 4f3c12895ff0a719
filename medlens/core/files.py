"""Writing results without ever leaving half a file: the one atomic writer, JSON writer and CSV writer.

* :func:`atomic_write` writes text or bytes to a temporary file beside the target and renames it
  into place (the only ``os.replace`` in medlens): a reader sees the old file or the new one,
  never half of one, whatever happens mid-write.
* :func:`staged_folder` does the same for a whole output folder: results go into a hidden staging
  folder next to it and move into place only when the block ends without error; on failure the
  staging folder is removed. An ``out`` that exists as a file is refused before any work.
* :func:`write_json` is strict JSON: NaN and infinities are written as ``null`` (never the bare
  ``NaN`` token most parsers reject), numpy and torch scalars/arrays as numbers/lists, paths as
  strings. :func:`json_text` gives the same text without writing it.
* :func:`write_csv` writes rows of dicts with a header, through :func:`atomic_write`.
* :func:`folder_lock` is the one lock on an output folder (the audit's and the leaderboard's
  stores): exclusive, released by the system when a process dies, and its file removed on release.

Staging folders are named ``.NAME.partial-PID-XXXX``: a run killed before it could clean up leaves
one behind, and the next :func:`staged_folder` on the same output removes those whose process is
gone, so no leftover outlives the next run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from medlens.errors import InputError


def atomic_write(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode(encoding) if isinstance(data, str) else data)
        replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for a library that writes files itself (``torch.save``,
    ``np.savez``, parquet); renamed onto ``path`` when the block ends without error, removed otherwise.

    ``suffix`` ends the temporary name, for writers that append an extension they miss (``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move ``source`` onto ``target`` in one step (a folder target is removed first)."""
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(source, target)


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a path, refused in one line when it exists and is not a folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is an existing file, not a folder: name a folder for the results")
    return out_dir


def _partial_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.partial-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its staging alone
    return True


def clean_stale_staging(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the staging folders of ``out_dir`` left by runs that were killed (their process is
    gone); returns those removed. A staging folder of a live process is left alone."""
    out_dir = Path(out_dir)
    removed: list[Path] = []
    if not out_dir.parent.is_dir():
        return removed
    prefix = _partial_prefix(out_dir)
    for entry in out_dir.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and _process_alive(int(pid_text)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


@contextmanager
def staged_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Write into a hidden staging folder; move its entries into ``out_dir`` only on success.

    Entries already in ``out_dir`` that the block did not write are kept; those it wrote replace
    them. On an error nothing is moved and the staging folder is removed. Staging folders of
    killed runs on the same ``out_dir`` are removed first (:func:`clean_stale_staging`).
    """
    out_dir = check_output_folder(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(out_dir)}{os.getpid()}-", dir=out_dir.parent))
    try:
        yield staging
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            for item in staging.iterdir():
                replace(item, out_dir / item.name)
        except OSError:
            if created:
                shutil.rmtree(out_dir, ignore_errors=True)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def folder_lock(out_dir: str | os.PathLike, *, busy: str, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the block; ``busy`` is the one-line error when
    another process holds it.

    The lock is ``flock`` on ``out_dir/name``: the system releases it when a process dies, so a
    killed run blocks nothing. The file is removed on release; a process that locked the file
    just before its removal sees that the path now names another file (or none) and tries again.
    """
    import fcntl

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.close()
            raise InputError(busy) from err
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()  # the holder before us removed it: lock the new file
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: non-finite floats become ``None``; arrays, tensors, paths converted."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy and torch scalars and arrays
    if callable(tolist):
        return jsonable(tolist())
    if hasattr(value, "item"):
        return jsonable(value.item())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return jsonable(dataclasses.asdict(value))
    return str(value)


def json_text(payload: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``payload`` (see :func:`jsonable`)."""
    separators = None if indent is not None else (",", ":")
    return json.dumps(jsonable(payload), indent=indent, sort_keys=sort_keys, allow_nan=False,
                      separators=separators)


def write_json(path: str | os.PathLike, payload: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``payload`` as strict JSON (NaN as ``null``) through :func:`atomic_write`."""
    return atomic_write(path, json_text(payload, indent=indent, sort_keys=sort_keys) + "\n")


def csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str] | None = None) -> str:
    """CSV text with a header: ``fieldnames`` or the keys of the first row (in order)."""
    rows = list(rows)
    names = list(fieldnames) if fieldnames is not None else (list(rows[0]) if rows else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]],
              fieldnames: Sequence[str] | None = None) -> Path:
    """Write rows of dicts as CSV with a header through :func:`atomic_write`; NaN cells are empty."""
    return atomic_write(path, csv_text(rows, fieldnames))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value
