"""Discover sibling agents: ``shipmates.agents`` entry points plus siblings contributed by plugins.

Rules, in this order:

1. Allow/deny: ``only``/``SHIPMATES_AGENTS`` (allow-list; empty loads none) and
   ``exclude``/``SHIPMATES_EXCLUDE_AGENTS`` (deny-list) match agent names or distribution
   names (PEP 503 normalised), optionally narrowed by origin (``local:fib``, ``remote:fib``,
   ``remote:*``). A filtered-out entry is recorded with status ``excluded``.
2. Names must match ``^[a-zA-Z0-9_-]{1,64}$`` (what model APIs accept), else ``failed``.
3. One name from two sources: neither loads, every one is recorded as ``conflict`` naming the
   others, and the reason says how to keep one. The outcome never depends on path order.
   ``SHIPMATES_PREFER`` (tokens as in the lists, e.g. ``remote:fib``) settles such a clash
   instead: the one source it names loads and the others are ``excluded`` (a plugin may use
   them as its fallback: shipmates-nats calls the local copy when no replica answers).
4. Loading is per entry and isolated: any failure is recorded as ``failed`` with a one-line
   reason and the others still load; ``strict`` (``SHIPMATES_STRICT=1``) re-raises the first.
   That covers the import, the provider call and every read of the sibling's attributes
   (through :func:`~._sibling.sibling_spec`: a ``name`` property that raises is that sibling's
   failure), each load runs :func:`~._loader.guarded` (its prints go to stderr; a slow one gets
   a notice; ``SHIPMATES_LOAD_TIMEOUT`` gives up on it), and an entry point read from the disk
   cache is checked against its distribution's ``entry_points.txt`` before it is imported.

Records are sorted by name, then distribution.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import InvalidNameError, NotASiblingError, PluginLoadError
from .._names import check_name
from .._settings import load_timeout_from, strict_from
from ._entrypoints import AGENTS_GROUP, PLUGINS_GROUP, EntryPointInfo, entry_points, redeclared
from ._loader import (
    EntryPointError,
    LoadTimeout,
    exception_line,
    guarded,
    load_entry_point,
)
from ._records import AgentRecord, Discovery
from ._selector import PREFER_ENV, Selector, parse_names
from ._sibling import Provenance, SiblingAttributeError, SiblingSpec, sibling_spec

if TYPE_CHECKING:
    import pluggy

    from .._plugins._host import PluginHost, PluginRecord


class _LoadError(Exception):
    """A load failure whose reason is already written for the user."""


class _Candidate(NamedTuple):
    name: str
    provenance: Provenance
    obj: Any = None
    """A plugin-registered object; entry points are imported from ``provenance.entry_point``."""
    instances: tuple[str, ...] = ()
    entry: EntryPointInfo | None = None
    """The entry point it comes from (None: registered by a plugin)."""

    @property
    def label(self) -> str:
        """What a user names in an allow/deny list to pick this one: the distribution, else the name."""
        return self.provenance.distribution or self.name


def discover(
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    load: bool = True,
    strict: bool | None = None,
    path: Sequence[str] | None = None,
    plugin_manager: pluggy.PluginManager | PluginHost | None = None,
    prefer: Iterable[str] | None = None,
) -> Discovery:
    """Find (and with ``load`` build) every sibling agent; never raises for a sibling unless strict.

    With ``load``, a bad ``SHIPMATES_LOAD_TIMEOUT`` is a :class:`~shipmates._settings.SettingsError`
    before anything loads.

    ``only``/``exclude`` take agent or distribution names; ``only=None`` falls back to
    ``SHIPMATES_AGENTS``, and ``SHIPMATES_EXCLUDE_AGENTS`` always adds to ``exclude``.
    ``load=False`` lists without importing any sibling module. ``path`` is where to look
    for distributions (default ``sys.path``); modules are imported through ``sys.path``.
    ``plugin_manager`` defaults to the shared one (its ``register_agents`` siblings join).
    ``prefer`` settles name clashes (default ``SHIPMATES_PREFER``, else the config file's).
    """
    selector = _agent_selector(only, exclude, prefer)
    strict = strict_from() if strict is None else strict
    timeout = load_timeout_from() if load else None

    records: list[AgentRecord] = []
    candidates = [_Candidate(ep.name, _provenance(ep), entry=ep) for ep in entry_points(AGENTS_GROUP, path)]
    candidates += _plugin_candidates(plugin_manager, records, strict)
    candidates.sort(key=lambda c: _order(c.name, c.provenance))

    live: list[_Candidate] = []
    for c in candidates:
        excluded = selector.exclusion(c.name, c.provenance.distribution, c.provenance.origin)
        if excluded:
            records.append(_record(c, "excluded", excluded))
            continue
        try:
            check_name(c.name, what="agent")
        except InvalidNameError as exc:
            record = _record(c, "failed", f"{exc}; rename it in {_source(c)}")
            records.append(record)
            if strict:
                raise PluginLoadError(record.one_line()) from exc
            continue
        live.append(c)

    by_name: dict[str, list[_Candidate]] = {}
    for c in live:
        by_name.setdefault(c.name, []).append(c)
    for name, group in by_name.items():
        chosen = _preferred(group, selector) if len(group) > 1 else None
        if chosen is not None:
            reason = f"the name {name!r} is preferred from {_where(chosen)} ({PREFER_ENV} or --prefer)"
            records += [_record(c, "excluded", reason) for c in group if c is not chosen]
            group = [chosen]
        if len(group) > 1:
            records += [_record(c, "conflict", _conflict_reason(name, c, group)) for c in group]
        elif load:
            records.append(_load(group[0], strict, path, timeout))
        else:
            records.append(_record(group[0], "ok", None))
    records.sort(key=lambda r: _order(r.name, r.provenance))
    return Discovery(records)


def _preferred(group: list[_Candidate], selector: Selector) -> _Candidate | None:
    """The one candidate of a clash that the prefer tokens name, else None."""
    prefer = selector.preferred()
    if not prefer:
        return None
    named = [
        c
        for c in group
        if any(Selector.match(t, c.name, c.provenance.distribution, c.provenance.origin) for t in prefer)
    ]
    return named[0] if len(named) == 1 else None


def _agent_selector(
    only: Iterable[str] | None, exclude: Iterable[str] | None, prefer: Iterable[str] | None = None
) -> Selector:
    """``only`` (else ``SHIPMATES_AGENTS``) and ``exclude`` plus ``SHIPMATES_EXCLUDE_AGENTS``;
    ``prefer`` (else ``SHIPMATES_PREFER`` or the config file's, read when needed)."""
    env = Selector.from_env("SHIPMATES_AGENTS", "SHIPMATES_EXCLUDE_AGENTS")
    return Selector(
        env.allow if only is None else parse_names(only),
        env.deny | parse_names(exclude or ()),
        allow_label="SHIPMATES_AGENTS" if only is None else "only=",
        deny_label="SHIPMATES_EXCLUDE_AGENTS or --exclude",
        prefer=None if prefer is None else parse_names(prefer),
    )


_session_selector: list[Selector] = []
"""The lists the session's crew was assembled with (:func:`remember_selector`)."""


def remember_selector(
    only: Iterable[str] | None, exclude: Iterable[str] | None, prefer: Iterable[str] | None = None
) -> None:
    """Keep the session's ``only``/``exclude``/``prefer`` so siblings added later are chosen the same way."""
    _session_selector[:] = [_agent_selector(only, exclude, prefer)]


def session_selector() -> Selector:
    """The session's allow/deny lists, else (no crew assembled) the environment's."""
    return _session_selector[-1] if _session_selector else _agent_selector(None, None)


def _provenance(ep: EntryPointInfo) -> Provenance:
    return Provenance("entry-point", ep.distribution, ep.version, ep.value)


def _order(name: str, p: Provenance) -> tuple[str, str, str, str]:
    return (name, p.distribution or "", p.origin, p.entry_point or p.location or "")


def _record(c: _Candidate, status: Any, reason: str | None) -> AgentRecord:
    return AgentRecord(c.name, c.provenance, status, reason, instances=list(c.instances))


def _source(c: _Candidate) -> str:
    if c.provenance.origin == "entry-point":
        return f"the [project.entry-points.{AGENTS_GROUP!r}] table of {c.provenance.describe()}"
    return c.provenance.describe()


def _where(c: _Candidate) -> str:
    p = c.provenance
    if p.origin == "remote":
        return f"{p.describe()} (remote, {p.location})" if p.location else f"{p.describe()} (remote)"
    if p.origin == "entry-point":
        return f"{p.describe()} (installed here)"
    return f"{p.describe()} (registered by a plugin)"


def _conflict_reason(name: str, c: _Candidate, group: list[_Candidate]) -> str:
    everyone = " and ".join(_where(o) for o in group)
    labels = [o.label for o in group]
    if len(set(labels)) < len(labels):
        # The same distribution twice (installed here and served remotely): name the origin too.
        labels = [f"{'remote' if o.provenance.origin == 'remote' else 'local'}:{o.label}" for o in group]
    keep = labels[group.index(c)]
    drop = ",".join(label for o, label in zip(group, labels, strict=True) if o is not c)
    return (
        f"the name {name!r} is registered by {everyone}, so none of them was loaded; to keep "
        f"{keep}, exclude the others with SHIPMATES_EXCLUDE_AGENTS={drop} (or --exclude {drop}), "
        f"or name it in an allow-list: SHIPMATES_AGENTS={keep},<your other agents>"
    )


def _load(c: _Candidate, strict: bool, path: Sequence[str] | None, timeout: float | None) -> AgentRecord:
    started = time.perf_counter()
    record = _record(c, "ok", None)
    try:
        if c.entry is not None:
            c = _declared(c, path)
            record.provenance = c.provenance
        label = f"sibling {c.name!r} ({c.provenance.describe()})"
        try:
            spec = guarded(lambda: _build(c), label, timeout, from_env=False)
        except LoadTimeout as exc:
            raise _LoadError(f"{exc}; {_fix(c)}, or raise SHIPMATES_LOAD_TIMEOUT {_exclude_hint(c)}") from exc
        record.sibling, record.spec = spec.sibling, spec
    except _LoadError as exc:
        record.status, record.reason = "failed", str(exc)
        if strict:
            raise PluginLoadError(record.one_line()) from (exc.__cause__ or exc)
    record.load_seconds = time.perf_counter() - started
    return record


def _declared(c: _Candidate, path: Sequence[str] | None) -> _Candidate:
    """``c`` once its entry point is known to be declared by its distribution, as read now.

    Entry points listed from the disk cache are checked before anything is imported; one its
    ``entry_points.txt`` no longer declares (a stale or tampered cache) is read again from the
    metadata (which rebuilds the cache), else it is this sibling's failure.
    """
    assert c.entry is not None
    if c.entry.declared():
        return c
    fresh = redeclared(c.entry, path)
    if fresh is None:
        raise _LoadError(
            f"the entry point {c.name} = {c.entry.value} is not declared by {c.provenance.describe()} "
            "(the discovery cache was out of date or tampered with: it was rebuilt and nothing was "
            "imported); if the distribution is installed, reinstall it"
        )
    return c._replace(provenance=_provenance(fresh), entry=fresh)


def _exclude_hint(c: _Candidate) -> str:
    return f"or exclude it with SHIPMATES_EXCLUDE_AGENTS={c.label}"


def _fix(c: _Candidate) -> str:
    return f"fix {c.provenance.describe()} (or report it to its authors)"


def _build(c: _Candidate) -> SiblingSpec:
    """Import (or take) ``c``'s object, call it when it is a provider, read its contract."""
    p = c.provenance
    exclude_hint = _exclude_hint(c)
    what = p.entry_point or f"the object registered by {p.describe()}"
    obj = c.obj
    if c.entry is not None:
        obj = _import(c, exclude_hint)
    try:
        spec = _spec(obj, what, c)
    except NotASiblingError as exc:
        if not callable(obj):
            raise _LoadError(
                f"{what} is neither a sibling nor a zero-argument provider: {exc}; "
                f"fix {p.describe()} {exclude_hint}"
            ) from None
        try:
            obj = obj()
        except (Exception, SystemExit) as exc:
            raise _LoadError(
                f"provider {what} raised {exception_line(exc)}; {_fix(c)} {exclude_hint}"
            ) from exc
        try:
            spec = _spec(obj, f"the sibling built by provider {what}", c)
        except NotASiblingError as exc:
            if inspect.iscoroutine(obj):
                obj.close()
                raise _LoadError(
                    f"provider {what} is async (it returned a coroutine); a provider must be a plain "
                    f"function returning the sibling; fix {p.describe()} {exclude_hint}"
                ) from None
            raise _LoadError(
                f"provider {what} returned something that is not a sibling: {exc}; "
                "it must return an object with str name and description and invoke(query) -> str "
                f"or async ainvoke(query) -> str; fix {p.describe()} {exclude_hint}"
            ) from None
    if spec.name != c.name:
        raise _LoadError(
            f"the built agent is named {spec.name!r} but is registered as {c.name!r}; "
            f"make the names match in {p.describe()} {exclude_hint}"
        )
    return spec


def _spec(obj: Any, what: str, c: _Candidate) -> SiblingSpec:
    """:func:`sibling_spec`, with an attribute that raises already this sibling's load failure."""
    try:
        return sibling_spec(obj)
    except SiblingAttributeError as exc:
        raise _LoadError(f"{what}: {exc}; {_fix(c)} {_exclude_hint(c)}") from exc.__cause__


def _import(c: _Candidate, exclude_hint: str) -> Any:
    try:
        return load_entry_point(c.provenance.entry_point or "")
    except EntryPointError as exc:
        reason = exc.reason(entry=c.name, source=c.provenance.describe(), hint=exclude_hint)
        raise _LoadError(reason) from exc.__cause__


def _plugin_candidates(
    pm: pluggy.PluginManager | PluginHost | None, records: list[AgentRecord], strict: bool
) -> list[_Candidate]:
    """Siblings contributed through ``register_agents``, one plugin at a time."""
    if pm is None and "shipmates._plugins._host" not in sys.modules and not _third_party_plugins():
        from .._mcp._discover import declared

        if not declared():
            # Only the built-in plugins would be loaded, and they contribute no siblings (no
            # MCP server is declared): skip importing pluggy, which keeps listing cheap.
            return []
    from .._plugins._host import host_of

    host = host_of(pm)
    found: list[_Candidate] = []

    def provenance(plugin: PluginRecord) -> Provenance:
        return Provenance("plugin", plugin.distribution, plugin.version, location=f"plugin {plugin.name}")

    def each(plugin: PluginRecord) -> dict[str, Any]:
        return {"register": _registrar(found, provenance(plugin))}

    # Guarded like a load (prints go to stderr, a notice when slow), in this thread: a hook may
    # start connections that belong to it, so no timeout.
    called = guarded(
        functools.partial(host.call_each, "register_agents", each=each),
        "the siblings plugins register (register_agents)",
        None,
        from_env=False,
    )
    for failure in called.failures:
        records.append(AgentRecord(failure.plugin.name, provenance(failure.plugin), "failed", str(failure)))
        if strict:
            raise PluginLoadError(records[-1].one_line()) from failure.error
    return found


def _third_party_plugins() -> bool:
    """True when an installed ``shipmates.plugins`` entry point passes the plugin allow/deny lists."""
    selector = Selector.from_env("SHIPMATES_PLUGINS", "SHIPMATES_EXCLUDE_PLUGINS")
    return any(selector.allows(ep.name, ep.distribution) for ep in entry_points(PLUGINS_GROUP))


def _registrar(found: list[_Candidate], default: Provenance) -> Callable[..., None]:
    def register(
        obj: Any, name: str | None = None, provenance: Provenance | None = None, instances: Iterable[str] = ()
    ) -> None:
        """Contribute ``obj`` (a sibling or a zero-argument provider) under ``name``."""
        if name is None:
            try:
                guess = getattr(obj, "name", None)
                if not isinstance(guess, str):
                    guess = getattr(obj, "__name__", None)
            except (Exception, SystemExit):  # loading it reports the attribute (see _spec)
                guess = None
            name = guess if isinstance(guess, str) else type(obj).__name__
        found.append(_Candidate(str(name), provenance or default, obj, tuple(instances)))

    return register
