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

AGENTS_GROUP = "shipmates.agents"
PLUGINS_GROUP = "shipmates.plugins"
PYDANTIC_GROUP = "pydantic"
"""pydantic's plugin group: scanned too, so shipmates knows cheaply whether pydantic has plugins."""
GROUPS = (AGENTS_GROUP, PLUGINS_GROUP, PYDANTIC_GROUP)

_FORMAT = 2
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
        """Import the module and return the named object; raise :class:`~._loader.EntryPointError`."""
        from ._loader import load_entry_point

        return load_entry_point(self.value)


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
        groups = _read_metadata(entries)
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
        if not text or ("shipmates." not in text and "pydantic" not in text):
            continue  # skip parsing the many distributions that cannot matter
        eps = [ep for ep in _parse_entry_points(text) if ep[0] in found]
        if not eps:
            continue
        name, version = _name_and_version(dist, normalize_dist(key))
        for group, ep_name, value in eps:
            found[group].append(EntryPointInfo(group, ep_name, value, name, version))
    return {group: tuple(eps) for group, eps in found.items()}


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
