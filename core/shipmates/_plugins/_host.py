"""The process-wide pluggy plugin manager: the built-in plugin plus ``shipmates.plugins`` entry points.

Each entry-point plugin is loaded on its own: one that fails to import or to register is
recorded (name, distribution, version, reason) and skipped, unless strict mode is on.

Environment:

- ``SHIPMATES_PLUGINS``: comma-separated allow-list of plugin or distribution names; unset loads
  every installed plugin, an empty value loads none (like ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
- ``SHIPMATES_EXCLUDE_PLUGINS``: comma-separated deny-list (like pytest's ``-p no:NAME``).
- ``SHIPMATES_STRICT=1``: re-raise the first plugin load failure (for plugin authors).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from .._crew._entrypoints import PLUGINS_GROUP, EntryPointInfo, entry_points, normalize_dist
from .._crew._loader import EntryPointError, exception_line, is_strict, load_entry_point
from .._crew._selector import Selector, parse_names
from .._errors import PluginLoadError
from ._hookspecs import PROJECT, ShipmatesSpec

BUILTIN_NAME = "shipmates.builtin"
PluginStatus = Literal["ok", "failed", "excluded"]


@dataclass
class PluginRecord:
    """One pluggy plugin: a row of ``shipmates plugins``."""

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    status: PluginStatus = "ok"
    reason: str | None = None
    hooks: list[str] = field(default_factory=list)
    load_seconds: float | None = None
    builtin: bool = False

    def describe(self) -> str:
        """``"shipmates-nats 0.1.0"``, or ``"built-in"``."""
        if self.builtin:
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version or '(unknown version)'}"
        return "registered from code"

    def one_line(self) -> str:
        """``name (dist version, entry point name = mod:attr): status: reason``."""
        where = self.describe()
        if self.entry_point:
            where += f", entry point {self.name} = {self.entry_point}"
        line = f"plugin {self.name} ({where}): {self.status}"
        return f"{line}: {self.reason}" if self.reason else line

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "reason": self.reason,
            "hooks": list(self.hooks),
            "load_seconds": self.load_seconds,
            "builtin": self.builtin,
        }


_pm: pluggy.PluginManager | None = None
_records: list[PluginRecord] = []
_lock = threading.Lock()


def get_plugin_manager() -> pluggy.PluginManager:
    """The shared plugin manager: built-in plugin plus installed ``shipmates.plugins``.

    Built on first use; raises :class:`PluginLoadError` only in strict mode.
    """
    global _pm
    if _pm is None:
        with _lock:  # agents running in worker threads may ask at the same moment
            if _pm is None:
                pm, records = build_plugin_manager()
                _records[:] = records
                _pm = pm
    return _pm


def reset_plugin_manager() -> None:
    """Forget the shared plugin manager (tests, or after changing the plugin env vars)."""
    global _pm
    _pm = None
    _records.clear()


def build_plugin_manager(
    *,
    allow: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    strict: bool | None = None,
    path: Sequence[str] | None = None,
    builtin: bool = True,
) -> tuple[pluggy.PluginManager, list[PluginRecord]]:
    """A new plugin manager and its plugin records; ``None`` arguments come from the environment."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ShipmatesSpec)
    records: list[PluginRecord] = []
    if builtin:
        from . import _builtin

        pm.register(_builtin, name=BUILTIN_NAME)
        records.append(PluginRecord(BUILTIN_NAME, builtin=True, hooks=_hooks_of(pm, _builtin)))
    env = Selector.from_env("SHIPMATES_PLUGINS", "SHIPMATES_EXCLUDE_PLUGINS")
    selector = Selector(
        env.allow if allow is None else parse_names(allow),
        env.deny if exclude is None else parse_names(exclude),
        allow_label=env.allow_label,
        deny_label=env.deny_label,
    )
    strict = is_strict() if strict is None else strict
    # Sorted, so load order (and pluggy's call order) does not depend on the file system.
    for ep in sorted(
        entry_points(PLUGINS_GROUP, path), key=lambda e: (e.name, normalize_dist(e.distribution))
    ):
        records.append(_load_one(pm, ep, selector, strict, records))
    return pm, records


def list_plugins() -> list[PluginRecord]:
    """Every plugin of the shared manager (built-in, loaded, failed, excluded), in load order."""
    pm = get_plugin_manager()
    for record in _records:
        if record.status == "ok":
            plugin = pm.get_plugin(record.name)
            if plugin is not None:
                record.hooks = _hooks_of(pm, plugin)
    known = {r.name for r in _records}
    extra = [  # registered at run time, from code
        PluginRecord(name, hooks=_hooks_of(pm, plugin))
        for name, plugin in pm.list_name_plugin()
        if plugin is not None and name not in known
    ]
    return [*_records, *extra]


def plugin_record(name: str) -> PluginRecord | None:
    """The record of the plugin registered under ``name`` in the shared manager, if any."""
    get_plugin_manager()
    return next((r for r in _records if r.name == name), None)


def plugins_header() -> str | None:
    """A pytest-style line ``plugins: shipmates-nats-0.1.0, ...``; None without third-party plugins."""
    loaded = [r for r in list_plugins() if r.status == "ok" and not r.builtin]
    if not loaded:
        return None
    labels = sorted({f"{r.distribution}-{r.version}" if r.distribution else r.name for r in loaded})
    return "plugins: " + ", ".join(labels)


def plugin_distributions() -> dict[str, tuple[str | None, str | None]]:
    """Distribution and version per loaded plugin name (for listings)."""
    return {r.name: (r.distribution, r.version) for r in list_plugins() if r.status == "ok"}


def plugin_failures() -> list[dict[str, Any]]:
    """Plugins that failed to load or were excluded, as dicts (for listings)."""
    return [r.as_dict() for r in list_plugins() if r.status != "ok"]


def call_hook_isolated(
    hook_name: str, *, plugin_manager: pluggy.PluginManager | None = None, **kwargs: Any
) -> tuple[list[Any], list[str]]:
    """Call every implementation of ``hook_name`` separately; a raising plugin does not stop the rest.

    Returns the non-None results and one error line per failing plugin (naming the plugin,
    its distribution, the hook and the fix).
    """
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
    results: list[Any] = []
    errors: list[str] = []
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):  # pluggy's LIFO call order
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:
            errors.append(hook_error(impl.plugin_name, hook_name, exc))
            continue
        if result is not None:
            results.append(result)
    return results, errors


def hook_error(plugin_name: str, hook_name: str, exc: BaseException) -> str:
    """``plugin 'x' (dist 1.0) failed in hook h: Error: msg; fix ... or disable it with ...``."""
    record = next((r for r in _records if r.name == plugin_name), None)
    where = f" ({record.describe()})" if record else ""
    return (
        f"plugin {plugin_name!r}{where} failed in hook {hook_name}: {exception_line(exc)}; "
        f"report it to the plugin's authors, or disable it with SHIPMATES_EXCLUDE_PLUGINS={plugin_name}"
    )


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())


def _load_one(
    pm: pluggy.PluginManager,
    ep: EntryPointInfo,
    selector: Selector,
    strict: bool,
    loaded: list[PluginRecord],
) -> PluginRecord:
    record = PluginRecord(ep.name, ep.distribution, ep.version, ep.value)
    excluded = selector.exclusion(ep.name, ep.distribution)
    if excluded is not None:
        record.status, record.reason = "excluded", excluded
        if selector.denies(ep.name, ep.distribution):
            pm.set_blocked(ep.name)
        return record
    started = time.perf_counter()
    plugin: Any = None
    try:
        plugin = load_entry_point(ep.value)
        if pm.has_plugin(ep.name):
            other = next((r for r in loaded if r.name == ep.name and r.status == "ok"), None)
            raise PluginLoadError(
                f"the plugin name {ep.name!r} is already taken"
                + (f" by {other.describe()}" if other else "")
                + f"; keep one with SHIPMATES_EXCLUDE_PLUGINS={ep.distribution}"
            )
        pm.register(plugin, name=ep.name)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError:
            pm.unregister(plugin)
            raise
    except (Exception, SystemExit) as exc:
        record.status = "failed"
        record.reason = _reason(ep, exc)
        record.load_seconds = time.perf_counter() - started
        if strict:
            raise PluginLoadError(record.one_line()) from exc
        return record
    record.load_seconds = time.perf_counter() - started
    record.hooks = _hooks_of(pm, plugin)
    return record


def _reason(ep: EntryPointInfo, exc: BaseException) -> str:
    fix = f"fix or reinstall {ep.distribution}, or disable it with SHIPMATES_EXCLUDE_PLUGINS={ep.name}"
    if isinstance(exc, pluggy.PluginValidationError):
        detail = " ".join(str(exc).split())
        hook = _unknown_hook(str(exc))
        if hook:
            known = ", ".join(sorted(n for n in dir(ShipmatesSpec) if not n.startswith("_")))
            return f"implements unknown hook {hook!r} (known hooks: {known}); {fix}"
        return f"invalid hook implementation: {detail}; {fix}"
    if isinstance(exc, PluginLoadError):
        return str(exc)
    if isinstance(exc, EntryPointError):
        hint = f"or disable it with SHIPMATES_EXCLUDE_PLUGINS={ep.name}"
        return exc.reason(entry=ep.name, source=f"{ep.distribution} {ep.version}", hint=hint)
    return f"loading {ep.value} raised {exception_line(exc)}; {fix}"


def _unknown_hook(message: str) -> str | None:
    marker = "unknown hook '"
    start = message.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = message.find("'", start)
    return message[start:end] if end > start else None
