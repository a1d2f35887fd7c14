"""Entry points of the shipmates groups, read once per process and cached on disk between processes.

Reading every installed distribution's ``entry_points.txt`` is what makes plugin discovery
slow with many packages installed, so the result is kept in a small file under the user cache
dir (:func:`shipmates._paths.cache_path`), keyed on the path entries and their mtimes.

What invalidates the disk cache (so an install or removal is always seen):

- installing, upgrading or removing a distribution: pip creates or deletes a ``*.dist-info``
  directory (and ``.pth``/finder files for editable installs), which changes the mtime of
  the site-packages directory;
- any change to the list of path entries (``sys.path``, ``PYTHONPATH``, entries added by
  ``.pth`` files, the current directory when ``''`` is on the path), or an entry appearing,
  disappearing or being touched;
- a different interpreter or a different cache format.

Not detected: editing an existing ``entry_points.txt`` in place without reinstalling (for
example inside a legacy ``setup.py develop`` ``.egg-info`` in a source tree), and
distributions served by custom ``sys.meta_path`` finders that do not live in a path entry.
Reinstall the package, pass ``refresh=True``, or set ``SHIPMATES_DISCOVERY_CACHE=0``.

Scans of path entries changed in the last two seconds are not cached at all (see ``_RACY_NS``).

Listing never imports a sibling or plugin module; :meth:`EntryPointInfo.load` does.

The disk cache is not trusted as read: a file that is not the user's own, or not private to
them, or of the wrong shape or types (rows of five strings in known groups, values of the
``module:attr`` form, each naming the ``entry_points.txt`` it came from, inside a
``*.dist-info``/``*.egg-info`` directory of a scanned path entry), is discarded and rebuilt
from the metadata. Listing reads no metadata on the warm path; loading does check, with
:meth:`EntryPointInfo.declared`, that the entry point's ``entry_points.txt`` still declares
exactly that group, name and value, so a poisoned cache cannot make shipmates import and call
what no installed distribution declares.
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

from .._paths import cache_path, private_dir
from .._settings import discovery_cache_from

AGENTS_GROUP = "shipmates.agents"
PLUGINS_GROUP = "shipmates.plugins"
PYDANTIC_GROUP = "pydantic"
"""pydantic's plugin group: scanned too, so shipmates knows cheaply whether pydantic has plugins."""
MCP_SERVERS_GROUP = "shipmates.mcp_servers"
"""MCP servers that join the crew as siblings (see :mod:`shipmates._mcp._servers`)."""
MISSPELLED = "shipmates.misspelled"
"""Not a group: entry points of groups that look like a typo of a shipmates group (each keeps
its real group), so ``shipmates agents`` can say why a package never joined."""
GROUPS = (AGENTS_GROUP, PLUGINS_GROUP, PYDANTIC_GROUP, MCP_SERVERS_GROUP, MISSPELLED)

_FORMAT = 4
_MAX_CACHE_BYTES = 16 * 1024 * 1024
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
    source: str = ""
    """The ``entry_points.txt`` declaring it; empty when the metadata is not a file on disk."""

    @property
    def module(self) -> str:
        return parse_value(self.value)[0]

    @property
    def attr(self) -> str | None:
        return parse_value(self.value)[1]

    @property
    def label(self) -> str:
        """``sibling 'fib' (shipmates-fib 0.1.0)``, ``plugin 'nats' (...)``: how messages name it."""
        kind = {AGENTS_GROUP: "sibling", PLUGINS_GROUP: "plugin"}.get(self.group, "entry point")
        return f"{kind} {self.name!r} ({self.distribution} {self.version})"

    def declared(self) -> bool:
        """True when :attr:`source` still declares exactly this group, name and value (reads it).

        Entry points without a source come straight from the metadata, never from the cache.
        """
        if not self.source:
            return True
        try:  # os.read rather than open(): this runs once per sibling loaded, on every start
            fd = os.open(self.source, os.O_RDONLY)
            try:
                text = os.read(fd, 1 << 20).decode("utf-8")
            finally:
                os.close(fd)
        except (OSError, UnicodeDecodeError):
            return False
        return self.value in text and (self.group, self.name, self.value) in _parse_entry_points(text)

    def load(self) -> Any:
        """Import the module and return the named object; raise :class:`~._loader.EntryPointError`.

        Checks first that the distribution still declares it (:meth:`declared`); when it does
        not, the caches are dropped and nothing is imported (kind ``undeclared``).
        """
        from ._loader import EntryPointError, load_entry_point

        if not self.declared():
            clear_cache(disk=True)
            detail = (
                f"the entry point {self.name} = {self.value} is not declared by {self.distribution} "
                f"{self.version} (the discovery cache was out of date or tampered with: it was dropped)"
            )
            raise EntryPointError("undeclared", detail, self.value)
        return load_entry_point(self.value, label=self.label)


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
    cache_file = _cache_file(entries) if discovery_cache_from() else None
    groups = _read_disk(cache_file, entries, stamps) if cache_file and not refresh else None
    racy = max(stamps, default=-1) > time.time_ns() - _RACY_NS
    if groups is None:
        groups = _read_metadata(entries)
        if cache_file and not racy:
            _write_disk(cache_file, entries, stamps, groups)
    if not racy:
        _memo[entries] = (stamps, groups)
    return groups


def redeclared(ep: EntryPointInfo, path: Sequence[str] | None = None) -> EntryPointInfo | None:
    """``ep`` as the metadata declares it now (same group, name and distribution), or None.

    For an entry point that failed :meth:`EntryPointInfo.declared`: rescans ``path`` with
    ``refresh=True``, which rewrites the disk cache.
    """
    fresh = scan(path, refresh=True).get(ep.group, ())
    key = normalize_dist(ep.distribution)
    return next((e for e in fresh if e.name == ep.name and normalize_dist(e.distribution) == key), None)


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
# holds str/int/list/dict values, lives in the user's own private cache dir and carries the
# Python version in its name and content (marshal's format may change between versions).
# marshal is not made for hostile input: a file anyone but the user could have written is
# never unmarshalled.
def _read_disk(cache_file: str, entries: tuple[str, ...], stamps: list[int]) -> Groups | None:
    try:
        with open(cache_file, "rb") as f:
            info = os.fstat(f.fileno())
            if (info.st_mode & 0o022) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
                return None  # not the user's own private file
            raw = f.read(_MAX_CACHE_BYTES + 1)
        if len(raw) > _MAX_CACHE_BYTES:
            return None
        data = marshal.loads(raw)
    except (OSError, EOFError, ValueError, TypeError):
        return None  # missing or corrupt: rescan (and overwrite it)
    return _valid(data, entries, stamps)


def _valid(data: object, entries: tuple[str, ...], stamps: list[int]) -> Groups | None:
    """The groups of an unmarshalled cache, or None unless every part has the shape and types
    :func:`_write_disk` gives it and names files of the scanned path entries."""
    if type(data) is not dict:
        return None
    if (
        data.get("format") != _FORMAT
        or data.get("python") != sys.version
        or data.get("path") != list(entries)
        or data.get("stamps") != stamps
    ):
        return None
    groups = data.get("groups")
    if type(groups) is not dict or set(groups) != set(GROUPS):
        return None
    places = set(entries)
    valid_value = re.compile(_VALUE_PATTERN).match  # re's own cache: compiled once per process
    found: Groups = {}
    for group, rows in groups.items():
        if type(rows) is not list:
            return None
        eps = []
        width = 6 if group == MISSPELLED else 5  # a misspelled entry keeps its real group
        for row in rows:
            # Spelled out rather than any(...) over the cells: this runs per row on the warm path.
            if type(row) is not list or len(row) != width:
                return None
            name, value, dist, version, source = row[:5]
            real = row[5] if width == 6 else group
            if type(real) is not str or (width == 6 and not is_misspelled(real)):
                return None
            if not (
                type(name) is str
                and type(value) is str
                and type(dist) is str
                and type(version) is str
                and type(source) is str
                and name
                and valid_value(value) is not None
                and _is_source(source, places)
            ):
                return None
            eps.append(EntryPointInfo(real, name, value, dist, version, source))
        found[group] = tuple(eps)
    return found


def _is_source(source: str, places: set[str]) -> bool:
    """True for ``<a scanned path entry>/<name>.dist-info|.egg-info/entry_points.txt`` (or an
    ``.egg`` path entry's ``EGG-INFO/entry_points.txt``)."""
    folder, _, file = source.rpartition(os.sep)
    place, _, meta = folder.rpartition(os.sep)
    if file != "entry_points.txt" or place not in places:
        return False
    return meta.endswith((".dist-info", ".egg-info")) or (meta == "EGG-INFO" and place.endswith(".egg"))


def _write_disk(cache_file: str, entries: tuple[str, ...], stamps: list[int], groups: Groups) -> None:
    """Keep ``groups`` for the next process, unless :func:`_valid` would refuse it (an entry
    without a source file, or a malformed value: then every process reads the metadata)."""
    places = set(entries)
    for eps in groups.values():
        for e in eps:
            if re.match(_VALUE_PATTERN, e.value) is None or not _is_source(e.source, places):
                return
    data = {
        "format": _FORMAT,
        "python": sys.version,
        "path": list(entries),
        "stamps": stamps,
        "groups": {
            group: [
                [
                    e.name,
                    e.value,
                    e.distribution,
                    e.version,
                    e.source,
                    *([e.group] if group == MISSPELLED else []),
                ]
                for e in eps
            ]
            for group, eps in groups.items()
        },
    }
    tmp = f"{cache_file}.{os.getpid()}-{time.monotonic_ns()}.tmp"  # unique across processes and threads
    try:
        private_dir(os.path.dirname(cache_file))
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(marshal.dumps(data))
        os.replace(tmp, cache_file)  # atomic: concurrent readers see the old or the new file
    except OSError:
        _unlink_quietly(tmp)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        return


def _read_metadata(entries: tuple[str, ...]) -> Groups:
    """Read every distribution's entry points on ``entries`` (the slow, cache-miss path)."""
    import importlib_metadata  # deferred: its import costs more than a warm scan

    found: dict[str, list[EntryPointInfo]] = {group: [] for group in GROUPS}
    seen: set[str] = set()
    for dist in importlib_metadata.distributions(path=list(entries)):
        # importlib's own rule: the first distribution of a normalised name on the path wins.
        key: str | None = getattr(dist, "_normalized_name", None)
        if key is None:
            continue
        if key in seen:
            continue
        seen.add(key)
        text = dist.read_text("entry_points.txt")
        if not text or ("hipmate" not in text and "pydantic" not in text):
            continue  # skip parsing the many distributions that cannot matter
        eps = [ep for ep in _parse_entry_points(text) if ep[0] in found or is_misspelled(ep[0])]
        if not eps:
            continue
        name, version = _name_and_version(dist, normalize_dist(key))
        source = _source(dist)
        for group, ep_name, value in eps:
            bucket = group if group in found else MISSPELLED
            found[bucket].append(EntryPointInfo(group, ep_name, value, name, version, source))
    return {group: tuple(eps) for group, eps in found.items()}


def is_misspelled(group: str) -> bool:
    """True for a group name that looks like a typo of ``shipmates.agents`` or ``shipmates.plugins``."""
    if group in GROUPS:
        return False
    folded = group.casefold()
    if folded.startswith(("shipmate", "ship-mate", "ship_mate")):
        return True
    if "hipm" not in folded and "mates" not in folded:
        return False
    import difflib

    return any(
        difflib.SequenceMatcher(None, folded, known).ratio() >= 0.85
        for known in (AGENTS_GROUP, PLUGINS_GROUP)
    )


def meant_group(group: str) -> str:
    """The shipmates group a misspelled ``group`` most likely meant."""
    if "mcp" in group.casefold():
        return MCP_SERVERS_GROUP
    return PLUGINS_GROUP if "plug" in group.casefold() else AGENTS_GROUP


def _source(dist: Any) -> str:
    """The path of ``dist``'s ``entry_points.txt``; empty unless its metadata is a directory on disk."""
    folder = getattr(dist, "_path", None)  # importlib's PathDistribution; zipped ones are no os.PathLike
    return os.path.join(os.fspath(folder), "entry_points.txt") if isinstance(folder, os.PathLike) else ""


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
