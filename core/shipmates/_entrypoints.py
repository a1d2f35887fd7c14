"""Entry points of the shipmates groups, read once per process and cached on disk between processes.

Reading every installed distribution's ``entry_points.txt`` is what makes plugin discovery
slow with many packages installed, so the result is kept in a small file under the user cache
dir (:func:`shipmates._state.cache_path`), keyed on the path entries and their mtimes.

What invalidates the disk cache (so an install or removal is always seen):

- installing, upgrading or removing a distribution: pip creates or deletes a ``*.dist-info``
  directory (and ``.pth``/finder files for editable installs), which changes the mtime of
  the site-packages directory;
- any change to the list of path entries (``sys.path``, ``PYTHONPATH``, entries added by
  ``.pth`` files, the current directory when ``''`` is on the path), or an entry appearing,
  disappearing or being touched;
- a different interpreter or a different cache format.

On a miss (the first start after an install) the path is scanned without importlib_metadata:
one listing per path entry, the distribution's normalised name (the "first on the path wins"
key, as importlib derives it) from its ``*.dist-info``/``*.egg-info`` directory name, and one
``entry_points.txt`` read; ``METADATA`` (``PKG-INFO``) headers are read only for the few
distributions that declare a shipmates entry point, for their name and version. Zip files and
``.egg`` directories on the path, and any ``sys.meta_path`` finder other than the path-based
ones that serves distributions, still go through importlib_metadata.

The miss is also incremental: a second file (``entry-points-*.index``) remembers, per path
entry (shared by every path that contains it), its mtime and what each metadata directory
contributed, validated by its ``entry_points.txt``'s inode, ctime, mtime and size (or its
absence). An unchanged path entry costs nothing; a changed one costs a listing, a stat per
metadata directory, and reading only the directories that are new or whose
``entry_points.txt`` changed (an install, upgrade or reinstall, even of the same version,
writes a new one). Removed directories simply drop out of the listing.

Not detected: editing an existing ``entry_points.txt`` in place without reinstalling (for
example inside a legacy ``setup.py develop`` ``.egg-info`` in a source tree) while the disk
cache is valid: the path entry's mtime does not change (the next miss would notice it);
editing only ``METADATA``'s Name or Version in place (not even by a miss); and
distributions served by custom ``sys.meta_path`` finders that do not live in a path entry
(read on a miss, but their changes do not invalidate the cache). Reinstall the package, pass
``refresh=True``, or set ``SHIPMATES_DISCOVERY_CACHE=0``. Of two metadata directories of one
name in one path entry (left over by a broken install), the first in sorted order wins
(importlib: directory order).

Scans of path entries changed in the last two seconds are not cached at all, and an
``entry_points.txt`` written in that window is read again next time (see ``_RACY_NS``).

Listing never imports a sibling or plugin module; :meth:`EntryPointInfo.load` does.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import time
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from ._state import cache_path

AGENTS_GROUP = "shipmates.agents"
PLUGINS_GROUP = "shipmates.plugins"
GROUPS = (AGENTS_GROUP, PLUGINS_GROUP)

_FORMAT = 1
# Like git's "racy" index entries: a directory changed within this window of the scan may
# change again with the same coarse mtime (2 s on FAT), so such a scan is never cached.
_RACY_NS = 2_000_000_000
_VALUE_PATTERN = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"

Groups = dict[str, tuple["EntryPointInfo", ...]]
_memo: dict[tuple[str, ...], tuple[list[int], Groups]] = {}


# A NamedTuple, not a dataclass: defining a dataclass costs more than a warm scan.
class EntryPointInfo(NamedTuple):
    """One entry point of a shipmates group, with the distribution that declares it."""

    group: str
    name: str
    value: str
    """``"module:attr"`` as written in the distribution's metadata."""
    distribution: str
    version: str

    @property
    def module(self) -> str:
        return parse_value(self.value)[0]

    @property
    def attr(self) -> str | None:
        return parse_value(self.value)[1]

    def load(self) -> Any:
        """Import the module and return the named object (may raise anything the import raises)."""
        import importlib

        obj: Any = importlib.import_module(self.module)
        for part in (self.attr or "").split("."):
            if part:
                obj = getattr(obj, part)
        return obj


def entry_points(
    group: str, path: Sequence[str] | None = None, *, refresh: bool = False
) -> tuple[EntryPointInfo, ...]:
    """The entry points of ``group`` on ``path`` (default ``sys.path``), first distribution wins.

    ``refresh=True`` ignores every cache and reads all metadata again.
    """
    return scan(path, refresh=refresh).get(group, ())


def scan(path: Sequence[str] | None = None, *, refresh: bool = False) -> Groups:
    """Entry points of every shipmates group on ``path``, by group.

    Within a process a repeated scan costs one stat per path entry, so a package installed
    while a long-running process (the REPL) is up is seen by its next discovery.
    """
    entries = tuple(os.path.abspath(p or ".") for p in (sys.path if path is None else path))
    # Stamps are taken before reading, so an install racing with this scan invalidates it.
    stamps = _stamps(entries)
    if not refresh:
        memo = _memo.get(entries)
        if memo is not None and memo[0] == stamps:
            return memo[1]
    use_disk = os.environ.get("SHIPMATES_DISCOVERY_CACHE", "1").strip().lower() not in {"0", "false", "no"}
    cache_file = _cache_file(entries) if use_disk else None
    groups = _read_disk(cache_file, entries, stamps) if cache_file and not refresh else None
    racy = max(stamps, default=-1) > time.time_ns() - _RACY_NS
    if groups is None:
        groups = _read_metadata(entries, stamps, use_index=cache_file is not None, reuse=not refresh)
        if cache_file and not racy:
            _write_disk(cache_file, entries, stamps, groups)
    if not racy:
        _memo[entries] = (stamps, groups)
    return groups


def parse_value(value: str) -> tuple[str, str | None]:
    """``"pkg.mod:obj.attr [extra]"`` -> ``("pkg.mod", "obj.attr")``; ValueError when malformed."""
    match = re.match(_VALUE_PATTERN, value.strip())
    if match is None:
        raise ValueError(f"malformed entry point value {value!r} (expected 'package.module:attribute')")
    return match.group("module"), match.group("attr")


def normalize_dist(name: str) -> str:
    """PEP 503 normalised distribution name: ``Shipmates_Fib`` -> ``shipmates-fib``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def clear_cache(*, disk: bool = False) -> None:
    """Forget this process's copy; with ``disk=True`` also delete the on-disk caches."""
    _memo.clear()
    if disk:
        directory = cache_path()
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            if name.startswith("entry-points-"):
                _unlink_quietly(os.path.join(directory, name))


def _stamps(entries: tuple[str, ...]) -> list[int]:
    stamps = []
    for entry in entries:
        try:
            stamps.append(os.stat(entry).st_mtime_ns)
        except OSError:
            stamps.append(-1)
    return stamps


def _cache_file(entries: tuple[str, ...]) -> str:
    key = "\0".join((str(_FORMAT), sys.version, sys.prefix, *entries)).encode("utf-8", "surrogatepass")
    return os.path.join(cache_path(), f"entry-points-{zlib.crc32(key):08x}{zlib.adler32(key):08x}.marshal")


# marshal rather than json: it is built in, so the warm path imports nothing. The file only
# holds str/int/list/dict values, lives in the user's own cache dir and carries the Python
# version in its name and content (marshal's format may change between versions).
def _read_disk(cache_file: str, entries: tuple[str, ...], stamps: list[int]) -> Groups | None:
    try:
        with open(cache_file, "rb") as f:
            data = marshal.loads(f.read())
        if (
            data["format"] != _FORMAT
            or data["python"] != sys.version
            or data["path"] != list(entries)
            or data["stamps"] != stamps
        ):
            return None
        groups: dict[str, list[list[str]]] = data["groups"]
        return {group: tuple(EntryPointInfo(group, *row) for row in rows) for group, rows in groups.items()}
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return None  # missing, corrupt or foreign file: rescan (and overwrite it)


def _write_disk(cache_file: str, entries: tuple[str, ...], stamps: list[int], groups: Groups) -> None:
    data = {
        "format": _FORMAT,
        "python": sys.version,
        "path": list(entries),
        "stamps": stamps,
        "groups": {
            group: [[e.name, e.value, e.distribution, e.version] for e in eps]
            for group, eps in groups.items()
        },
    }
    _write_atomic(cache_file, marshal.dumps(data))


def _write_atomic(target: str, payload: bytes) -> None:
    tmp = f"{target}.{os.getpid()}-{time.monotonic_ns()}.tmp"  # unique across processes and threads
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, target)  # atomic: concurrent readers see the old or the new file
    except OSError:
        _unlink_quietly(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        return


# ------------------------------------------------------------------ the cache-miss path
#
# A record is what one metadata directory contributes, the same tuple in memory and in the
# index file: (validator, key, name, version, entry points of our groups as (group, name,
# value)). key is the normalised distribution name (the dedup key), taken from the directory
# name as importlib does; name and version are only read (from METADATA) for the few
# distributions that declare a shipmates entry point. The validator is its entry_points.txt's
# (inode, ctime_ns, mtime_ns, size), () when there is none, (-2,) when it must be read again:
# every install, upgrade or reinstall writes a new directory, hence a new entry_points.txt
# (a new ctime even when an installer preserves the wheel's mtimes), and a directory without
# one contributes only its key, which its name determines.
_Record = tuple[tuple[int, ...], str, str, str, tuple[tuple[str, str, str], ...]]
_Index = dict[str, tuple[int, dict[str, _Record]]]

_INDEX_FORMAT = 1
_INDEX_LIMIT = 64  # path entries remembered in the index beyond the current path
_METADATA_SUFFIXES = (".dist-info", ".egg-info")
_normalize = re.compile(r"[-_.]+").sub
# Finders whose find_distributions reads path entries, which the fast scan does itself.
_PATH_FINDER_MODULES = frozenset(
    {
        "importlib_metadata",
        "importlib.metadata",
        "_frozen_importlib_external",
        "importlib._bootstrap_external",
    }
)

_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_O_DIRECTORY = _O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_USE_DIR_FD = (
    hasattr(os, "O_DIRECTORY")
    and os.open in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
    and os.listdir in os.supports_fd
)

# Observable work of the miss path (tests assert on it): metadata directories whose files
# were read, and path entries that were listed.
_stats = {"parsed": 0, "listed": 0}


def _read_metadata(
    entries: tuple[str, ...], stamps: list[int] | None = None, *, use_index: bool = False, reuse: bool = True
) -> Groups:
    """Every distribution's shipmates entry points on ``entries`` (the cache-miss path).

    With ``use_index`` the per-path-entry index on disk is consulted (unless ``reuse`` is
    false) and updated: an unchanged path entry costs nothing, a changed one a listing plus
    the files of the metadata directories that are new or were recreated since.
    """
    if stamps is None:
        stamps = _stamps(entries)
    if _foreign_finders():  # a finder that serves distributions from elsewhere: ask importlib
        return _merge([_importlib_records(list(entries))])
    index_file = _index_file() if use_index else None
    index = _read_index(index_file) if index_file and reuse else {}
    try:
        groups, changed = _scan_entries(entries, stamps, index)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError):
        index = {}  # a well-formed file of the wrong shape: start over
        groups, changed = _scan_entries(entries, stamps, index)
    if changed and index_file:
        _write_index(index_file, index, entries)
    return groups


def _scan_entries(entries: tuple[str, ...], stamps: list[int], index: _Index) -> tuple[Groups, bool]:
    racy_before = time.time_ns() - _RACY_NS
    per_entry: list[dict[str, _Record]] = []
    changed = False
    for entry, stamp in zip(entries, stamps, strict=True):
        if stamp < 0:  # missing or unreadable path entry
            per_entry.append({})
            continue
        cached = index.get(entry)
        if cached is not None and cached[0] == stamp:
            per_entry.append(cached[1])
            continue
        records = _list_entry(entry, cached[1] if cached is not None else {}, racy_before)
        if records is None:  # a zip file or an .egg directory: importlib's own reader
            per_entry.append(_importlib_records([entry]))
            continue
        # A racy stamp is stored as -2, which never matches: the entry is listed again next time.
        index[entry] = (stamp if stamp < racy_before else -2, records)
        per_entry.append(records)
        changed = True
    return _merge(per_entry), changed


def _merge(per_entry: list[dict[str, _Record]]) -> Groups:
    """Group the records by entry-point group; importlib's rule: the first distribution of a name wins."""
    found: dict[str, list[EntryPointInfo]] = {group: [] for group in GROUPS}
    seen: set[str] = set()
    for records in per_entry:
        for record in records.values():
            key = record[1]
            if not key or key in seen:
                continue
            seen.add(key)
            for group, name, value in record[4]:
                found[group].append(EntryPointInfo(group, name, value, record[2], record[3]))
    return {group: tuple(eps) for group, eps in found.items()}


def _list_entry(entry: str, old: dict[str, _Record], racy_before: int) -> dict[str, _Record] | None:
    """The metadata directories of one path entry, reusing ``old`` records of unchanged ones.

    None when the entry is not a plain directory (importlib reads zip files and eggs).
    """
    if os.path.basename(entry).lower().endswith(".egg"):
        return None
    dir_fd: int | None = None
    try:
        if _USE_DIR_FD:  # relative lookups from an open directory skip walking the path each time
            dir_fd = os.open(entry, _O_DIRECTORY)
            children = os.listdir(dir_fd)
        else:
            children = os.listdir(entry)
    except NotADirectoryError:
        return None
    except OSError:
        return {}
    try:
        return _read_entry(entry, dir_fd, children, old, racy_before)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _read_entry(
    entry: str, dir_fd: int | None, children: list[str], old: dict[str, _Record], racy_before: int
) -> dict[str, _Record]:
    _stats["listed"] += 1
    # Sorted, so that of two directories of one name in one path entry the same one always wins.
    names = sorted(child for child in children if child.lower().endswith(_METADATA_SUFFIXES))
    records: dict[str, _Record] = {}
    for name in names:
        where = name if dir_fd is not None else os.path.join(entry, name)
        previous = old.get(name)
        if previous is not None:
            try:
                st = os.stat(f"{where}/entry_points.txt", dir_fd=dir_fd)
                validator: tuple[int, ...] = (st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size)
            except OSError:  # none (or unreadable, or a dangling link: still counts for "first wins")
                validator = ()
            if validator == previous[0]:
                records[name] = previous
                continue
        records[name] = _parse_dist(where, dir_fd, name, racy_before)
    return records


def _parse_dist(where: str, dir_fd: int | None, name: str, racy_before: int) -> _Record:
    """One ``*.dist-info``/``*.egg-info`` directory: the dedup key from the directory name
    (``name-version.dist-info``, ``name-version-pyX.Y.egg-info``, ``name.egg-info``), entry
    points from ``entry_points.txt``, and only for a distribution with a shipmates entry
    point its ``Name`` and ``Version`` headers (the directory name's version when missing)."""
    _stats["parsed"] += 1
    stem = name[: name.rfind(".")]
    raw_name, _, rest = stem.partition("-")
    egg = name.lower().endswith(".egg-info")
    key = raw_name.lower().replace("_", "-").replace(".", "-")  # normalize_dist, cheaper
    if "--" in key:
        key = _normalize("-", key)
    # Most distributions have no entry_points.txt or none of ours; those cost one open.
    data, validator = _read_entry_points(f"{where}/entry_points.txt", dir_fd, racy_before)
    eps: tuple[tuple[str, str, str], ...] = ()
    if b"shipmates." in data:
        eps = tuple(ep for ep in _parse_entry_points(data.decode("utf-8", "replace")) if ep[0] in GROUPS)
    if not eps and key:
        return (validator, key, "", "", ())
    meta_name, meta_version = _read_headers(where, dir_fd)
    if not key:  # an odd directory name: importlib falls back to the Name header too
        key = normalize_dist(meta_name) if meta_name else ""
    dir_version = rest.partition("-")[0] if egg else rest
    return (validator, key, meta_name or key, meta_version or dir_version or "unknown", eps)


def _read_entry_points(path: str, dir_fd: int | None, racy_before: int) -> tuple[bytes, tuple[int, ...]]:
    """The file's content and its validator (see ``_Record``); no file object: cheaper."""
    try:
        fd = os.open(path, _O_RDONLY, dir_fd=dir_fd)
    except OSError:  # none (most distributions), unreadable, or inside an .egg-info *file*
        return b"", ()
    try:
        st = os.fstat(fd)
        # Written within the racy window: it may change again with the same times; read it next time.
        # (mtime alone: a later write sets it to "now" even where an installer had preserved it)
        fresh = st.st_mtime_ns >= racy_before
        validator = (-2,) if fresh else (st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size)
        chunks = []
        while chunk := os.read(fd, 16384):
            chunks.append(chunk)
        return b"".join(chunks), validator
    except OSError:
        return b"", (-2,)
    finally:
        os.close(fd)


def _read_bytes(path: str, dir_fd: int | None) -> bytes:
    """The file's content, b"" when it is missing or unreadable (no file object: cheaper)."""
    try:
        fd = os.open(path, _O_RDONLY, dir_fd=dir_fd)
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 16384):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:  # e.g. an .egg-info *file* opened as a directory on some systems
        return b""
    finally:
        os.close(fd)


def _read_headers(where: str, dir_fd: int | None) -> tuple[str, str]:
    """``Name`` and ``Version`` from METADATA (or PKG-INFO) headers, without the email parser."""
    for filename in ("METADATA", "PKG-INFO"):
        data = _read_bytes(f"{where}/{filename}", dir_fd)
        if not data:
            continue
        found: dict[str, str] = {}
        for line in data.decode("utf-8", "replace").split("\n\n", 1)[0].splitlines():
            key, sep, value = line.partition(":")
            if sep and key in ("Name", "Version") and key not in found:
                found[key] = value.strip()
        return found.get("Name", ""), found.get("Version", "")
    return "", ""


def _foreign_finders() -> bool:
    """True when a ``sys.meta_path`` finder other than the path-based ones serves distributions."""
    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is None:
            continue
        cls = finder if isinstance(finder, type) else type(finder)
        if cls.__module__ not in _PATH_FINDER_MODULES:
            return True
    return False


def _importlib_records(paths: list[str]) -> dict[str, _Record]:
    """Records through importlib_metadata: zip files and eggs on the path, custom finders."""
    import importlib_metadata  # deferred: its import costs more than a warm scan

    records: dict[str, _Record] = {}
    for i, dist in enumerate(importlib_metadata.distributions(path=paths)):
        key: str | None = getattr(dist, "_normalized_name", None)
        if not key:
            continue
        key = normalize_dist(key)
        try:
            text = dist.read_text("entry_points.txt") or ""
        except Exception:  # a broken metadata file must not hide the other distributions
            text = ""
        eps: tuple[tuple[str, str, str], ...] = ()
        if "shipmates." in text:
            eps = tuple(ep for ep in _parse_entry_points(text) if ep[0] in GROUPS)
        name, version = _name_and_version(dist, key) if eps else ("", "")
        records[str(i)] = ((-2,), key, name, version, eps)
    return records


def _index_file() -> str:
    key = "\0".join((str(_INDEX_FORMAT), sys.version)).encode("utf-8", "surrogatepass")
    return os.path.join(cache_path(), f"entry-points-{zlib.crc32(key):08x}.index")


def _read_index(index_file: str) -> _Index:
    try:
        with open(index_file, "rb") as f:
            data = marshal.loads(f.read())
        if data["format"] != _INDEX_FORMAT or data["python"] != sys.version:
            return {}
        index: _Index = data["entries"]
        return index if isinstance(index, dict) else {}
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return {}  # missing, corrupt or foreign file: list everything (and overwrite it)


def _write_index(index_file: str, index: _Index, entries: tuple[str, ...]) -> None:
    if len(index) > len(entries) + _INDEX_LIMIT:  # forget path entries of other runs
        keep = set(entries)
        index = {entry: value for entry, value in index.items() if entry in keep}
    _write_atomic(
        index_file, marshal.dumps({"format": _INDEX_FORMAT, "python": sys.version, "entries": index})
    )


def _parse_entry_points(text: str) -> list[tuple[str, str, str]]:
    """``(group, name, value)`` from ``entry_points.txt``, the format importlib.metadata reads.

    Parsed here rather than through ``Distribution.entry_points`` because that rejects a whole
    distribution over one malformed value; here such a value reaches the loader, which
    reports it as that entry point's failure.
    """
    found = []
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
        elif group is not None and "=" in line:
            name, _, value = line.partition("=")
            found.append((group, name.strip(), value.strip()))
    return found


def _name_and_version(dist: Any, fallback: str) -> tuple[str, str]:
    """``Name`` and ``Version`` from the metadata headers, without the email parser's cost."""
    try:
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    except Exception:  # a broken metadata file must not hide the other distributions
        text = ""
    found: dict[str, str] = {}
    for line in text.partition("\n\n")[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    return found.get("Name") or fallback, found.get("Version") or "unknown"
