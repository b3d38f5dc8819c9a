"""Files that a crash cannot corrupt: atomic writes and folders, journals of finished work, a file-keyed cache.

Readers never see a half-written file or folder; a kill -9 loses at most the journal line being written.
A journal may also record what produced it (its origin: a JSON object naming the model, options and inputs),
so that work of one run is never resumed by another: `Journal.claim`, and `differences` to name what changed.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from auralign.errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", durable: bool = True, **open_kwargs: Any
) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success rename it over `path`, on error delete it.

    The rename alone protects against a killed process; `durable` also fsyncs the data, which protects
    against power loss at about 1 ms per file (bulk audio rendering turns it off).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private (0600); give a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def read_jsonl(path: str | os.PathLike, what: str = "JSONL file") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; DataError naming file and line for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"{path}:{lineno}: broken JSON ({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
                yield lineno, record
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, durable: bool = True, shared: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` (an old one is removed),
    on error it is deleted. `durable` fsyncs every file first (the rename then publishes only what is on
    disk). `shared`: other processes may publish the same folder at once (a cache), so each writes its own
    temporary and the last rename wins; otherwise a temporary left by a killed run is reused."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid() if shared else ''}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if durable:
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as handle:
                        os.fsync(handle.fileno())
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """The dotted keys at which two JSON values differ (`prefix` itself when they are not both objects)."""
    if not (isinstance(saved, dict) and isinstance(current, dict)):
        return [] if saved == current else [prefix or "(the whole value)"]
    keys = sorted(set(saved) | set(current))
    found = []
    for key in keys:
        found += differences(saved.get(key), current.get(key), f"{prefix}.{key}" if prefix else key)
    return found


ORIGIN = "origin"  # the key of a journal's first line: what produced the work it records


def origin_file(output: str | os.PathLike) -> Path:
    """Where a finished output's record of what produced it lives: `X.jsonl` -> `X.origin.json`."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".origin.json")


def record_origin(output: str | os.PathLike, origin: dict[str, Any]) -> None:
    """Write `output`'s origin file; before the work, so an output never exists without one, whenever a kill
    comes."""
    atomic_write_text(origin_file(output), json.dumps(origin, indent=2) + "\n")


def reusable(output: str | os.PathLike, origin: dict[str, Any], *, what: str, remedy: str) -> bool:
    """True when `output` exists and its origin file records `origin`; False when there is no output yet; a
    DataError `OUTPUT: {what} (differs in: ...); {remedy}` when the one there came from elsewhere."""
    output = Path(output)
    if not output.exists():
        return False
    path = origin_file(output)
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    origin = json.loads(json.dumps(origin))  # compare as it reads back (tuples -> lists)
    if saved == origin:
        return True
    why = f"differs in: {', '.join(differences(saved, origin))}" if saved else f"no {path.name} beside it"
    raise DataError(f"{output}: {what} ({why}); {remedy}")


class Journal:
    """An append-only JSONL file of finished work that a kill -9 cannot corrupt: a line torn by a kill is
    skipped when read back and closed before the next append, so a resumed run loses at most that line.

    `dump_options` go to `json.dumps` for every appended record. A claimed journal (`claim`) starts with an
    `{"origin": ...}` line; `records`, `by` and `keep` skip it.
    """

    def __init__(self, path: str | os.PathLike, **dump_options: Any) -> None:
        self.path = Path(path)
        self.dump_options = dump_options
        self._handle: IO[str] | None = None

    def exists(self) -> bool:
        return self.path.is_file()

    def lines(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(raw line, object) for every whole JSON object in the file, in order; torn lines are skipped."""
        if not self.path.is_file():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # torn by a kill
                continue
            if isinstance(record, dict):
                yield line, record

    def records(self) -> list[dict[str, Any]]:
        return [record for _, record in self.lines() if not _is_origin(record)]

    def by(self, key: str) -> dict[Any, str]:
        """The last raw line per value of `key` (records without it are skipped)."""
        return {
            record[key]: line for line, record in self.lines() if key in record and not _is_origin(record)
        }

    def origin(self) -> dict[str, Any] | None:
        """What produced this journal's work (its first line, written by `claim`), if recorded."""
        for _, record in self.lines():
            return record[ORIGIN] if _is_origin(record) else None
        return None

    def claim(self, origin: dict[str, Any]) -> None:
        """Make this journal the record of work produced by `origin`: a missing journal, or one holding no
        whole record, starts with it; one whose recorded origin differs (or is not recorded) is refused with
        a DataError naming the file and the keys that differ, since resuming it would mix two runs."""
        origin = json.loads(json.dumps(origin))  # compare as it reads back (tuples -> lists)
        if not any(True for _ in self.lines()):
            atomic_write_text(self.path, json.dumps({ORIGIN: origin}, **self.dump_options) + "\n")
            return
        saved = self.origin()
        if saved == origin:
            return
        why = (
            f"differs in: {', '.join(differences(saved, origin))}"
            if saved is not None
            else "no record of what produced it"
        )
        raise DataError(
            f"{self.path}: holds unfinished work of another run ({why}); "
            "rerun with the same settings to resume it, or delete it to start again"
        )

    def __enter__(self) -> "Journal":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.is_file() and self.path.stat().st_size and not _ends_with_newline(self.path)
        self._handle = self.path.open("a", encoding="utf-8")
        if torn:
            self._handle.write("\n")  # close a line torn by a kill, so the next record parses
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._handle is not None
        self._handle.close()
        self._handle = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it (inside `with journal:`, or opening the file for this record)."""
        if self._handle is None:
            with self:
                self.append(record)
            return
        self._handle.write(json.dumps(record, **self.dump_options) + "\n")
        self._handle.flush()

    def keep(self, wanted: Callable[[dict[str, Any]], bool]) -> None:
        """Rewrite the file atomically with only the records `wanted` accepts (and no torn line)."""
        kept = (line for line, record in self.lines() if _is_origin(record) or wanted(record))
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))

    def finish(self, out: str | os.PathLike, lines: Iterable[str]) -> None:
        """Publish `lines` atomically as `out`, then drop the journal: the work it recorded is done."""
        with atomic_write(out, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
        self.path.unlink(missing_ok=True)


def _is_origin(record: dict[str, Any]) -> bool:
    return set(record) == {ORIGIN}


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class FileCache:
    """Values computed from files, stored under `folder` and keyed by the file's resolved path, size and mtime
    and a `tag` (what computed them), so an edited file is computed again. `save(value, handle)` and
    `load(handle)` write and read one value; entries are written atomically, so concurrent writers are safe.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        suffix: str,
        save: Callable[[Any, IO[bytes]], None],
        load: Callable[[IO[bytes]], Any],
        tag: str = "",
        fanout: bool = False,
    ) -> None:
        self.folder, self.suffix, self.tag, self.fanout = Path(folder), suffix, tag, fanout
        self._save, self._load = save, load
        self.hits = self.misses = 0

    def entry(self, file: str | os.PathLike) -> Path:
        file = Path(file)
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        digest = hashlib.sha1((f"{self.tag}|{key}" if self.tag else key).encode()).hexdigest()
        return self.folder / (digest[:2] if self.fanout else "") / f"{digest}{self.suffix}"

    def has(self, file: str | os.PathLike) -> bool:
        return self.entry(file).is_file()

    def load(self, file: str | os.PathLike) -> Any | None:
        """The cached value for `file`, or None when there is none."""
        entry = self.entry(file)
        if not entry.is_file():
            return None
        self.hits += 1
        with entry.open("rb") as handle:
            return self._load(handle)

    def get(self, file: str | os.PathLike, compute: Callable[[], Any]) -> Any:
        """The cached value for `file`, or `compute()` stored for next time."""
        value = self.load(file)
        if value is not None:
            return value
        self.misses += 1
        value = compute()
        self.put(file, value)
        return value

    def put(self, file: str | os.PathLike, value: Any) -> None:
        with atomic_write(self.entry(file), "wb", durable=False) as handle:
            self._save(value, handle)
