"""The plugin host: a pluggy plugin manager with its plugins' records, and the one way hooks are called.

The default host holds the built-in plugins (:data:`DEFAULT_PLUGINS`) plus the
``shipmates.plugins`` entry points; a custom plugin manager gets a host of its own
(:func:`host_of`).

Each entry-point plugin is loaded on its own: one that fails to import or to register is
recorded (name, distribution, version, reason) and skipped, unless strict mode is on.

Environment:

- ``SHIPMATES_PLUGINS``: comma-separated allow-list of plugin or distribution names; unset loads
  every installed plugin, an empty value loads none (like ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
- ``SHIPMATES_EXCLUDE_PLUGINS``: comma-separated deny-list (like pytest's ``-p no:NAME``).
- ``SHIPMATES_STRICT=1``: re-raise the first plugin load failure (for plugin authors).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import pluggy

from .._crew._entrypoints import PLUGINS_GROUP, EntryPointInfo, entry_points, normalize_dist
from .._crew._loader import EntryPointError, exception_line
from .._crew._records import status_line
from .._crew._selector import Selector, parse_names
from .._errors import PluginLoadError
from .._settings import otel_enabled, strict_from
from .._text import terminal_safe
from ._hookspecs import PROJECT, ShipmatesSpec

if TYPE_CHECKING:
    from pluggy import HookImpl

T = TypeVar("T")
log = logging.getLogger("shipmates")

OTEL_PLUGIN = ("shipmates.builtin.otel", "shipmates._plugins._builtin_otel")
"""The OpenTelemetry plugin: built in, registered only when enabled and installed (``shipmates[otel]``)."""


def _load_otel(host: PluginHost) -> None:
    name, module = OTEL_PLUGIN
    try:
        plugin = importlib.import_module(module)
    except ImportError as exc:
        log.warning(
            "OpenTelemetry is enabled (SHIPMATES_OTEL or OTEL_EXPORTER_OTLP_*) but cannot be loaded "
            "(%s): install it with `pip install 'shipmates[otel]'`, or unset those variables",
            exc,
        )
        return
    host.manager.register(plugin, name=name)
    host.records.append(PluginRecord(name, builtin=True, hooks=_hooks_of(host.manager, plugin)))


DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("shipmates.builtin", "shipmates._plugins._builtin_models"),
    ("shipmates.builtin.commands", "shipmates._plugins._builtin_commands"),
    ("shipmates.builtin.cli", "shipmates._plugins._builtin_cli"),
    ("shipmates.builtin.trace", "shipmates._plugins._builtin_trace"),
    ("shipmates.builtin.mcp", "shipmates._plugins._builtin_mcp"),
)
"""The built-in plugins, (name, module): shipmates' own behaviour goes through the same hooks."""
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
        """``plugin name (dist version, entry point name = mod:attr): status: reason``."""
        return "plugin " + status_line(self.name, self.describe(), self.entry_point, self.status, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HookKwargs = Callable[[PluginRecord], Mapping[str, Any]]


@dataclass(frozen=True)
class HookFailure:
    """One plugin's hook implementation raised: the one failure format of every hook call."""

    plugin: PluginRecord
    hook: str
    error: BaseException

    def __str__(self) -> str:
        record = self.plugin
        if record.builtin:
            fix = "report it to the shipmates developers"
        elif record.entry_point:
            fix = (
                f"report it to the authors of {record.distribution or record.name}, "
                f"or disable it with SHIPMATES_EXCLUDE_PLUGINS={record.name}"
            )
        else:
            fix = "fix the code that registered it, or unregister it"
        return (
            f"plugin {record.name!r} ({record.describe()}) failed in hook {self.hook}: "
            f"{exception_line(self.error)}; {fix}"
        )


@dataclass
class HookOutcome:
    """What calling one hook plugin by plugin gave: the non-None results and the failures."""

    results: list[Any] = field(default_factory=list)
    failures: list[HookFailure] = field(default_factory=list)


class PluginHost:
    """A pluggy plugin manager, the records of its plugins, and the one way shipmates calls hooks.

    :meth:`call_each` calls every implementation on its own, in pluggy's order (last
    registered first, ``tryfirst``/``trylast`` honoured), so one failing plugin never keeps
    the others from being called; failures come back as :class:`HookFailure` (plugin,
    distribution, version, hook and fix). Wrappers wrap the whole call.
    """

    def __init__(
        self, manager: pluggy.PluginManager | None = None, records: Iterable[PluginRecord] = ()
    ) -> None:
        if manager is None:
            manager = pluggy.PluginManager(PROJECT)
            manager.add_hookspecs(ShipmatesSpec)
        self.manager = manager
        self.records = list(records)
        self._memo: dict[str, tuple[object, Any]] = {}
        self._reported: set[tuple[str, str]] = set()
        self._reported_lock = threading.Lock()  # hooks fail in worker threads too

    @classmethod
    def load(
        cls,
        *,
        allow: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        strict: bool | None = None,
        path: Sequence[str] | None = None,
        builtin: bool = True,
    ) -> PluginHost:
        """The built-in plugins (:data:`DEFAULT_PLUGINS`) plus the ``shipmates.plugins`` entry
        points that pass the allow/deny lists; ``None`` arguments come from the environment."""
        host = cls()
        pm = host.manager
        if builtin:
            for name, module in DEFAULT_PLUGINS:
                plugin = importlib.import_module(module)
                pm.register(plugin, name=name)
                host.records.append(PluginRecord(name, builtin=True, hooks=_hooks_of(pm, plugin)))
            if otel_enabled():  # not even imported otherwise: runs nobody traces pay nothing
                _load_otel(host)
        env = Selector.from_env("SHIPMATES_PLUGINS", "SHIPMATES_EXCLUDE_PLUGINS")
        selector = Selector(
            env.allow if allow is None else parse_names(allow),
            env.deny if exclude is None else parse_names(exclude),
            allow_label=env.allow_label,
            deny_label=env.deny_label,
        )
        strict = strict_from() if strict is None else strict
        # Sorted, so load order (and pluggy's call order) does not depend on the file system.
        for ep in sorted(
            entry_points(PLUGINS_GROUP, path), key=lambda e: (e.name, normalize_dist(e.distribution))
        ):
            host.records.append(_load_one(pm, ep, selector, strict, host.records))
        _hosts[pm] = host
        return host

    # -- plugins ------------------------------------------------------------------------------

    def record(self, name: str) -> PluginRecord:
        """The record of the plugin registered as ``name`` (one made up for plugins added from code)."""
        found = next((r for r in self.records if r.name == name), None)
        return found if found is not None else PluginRecord(name)

    def list_plugins(self) -> list[PluginRecord]:
        """Every plugin (built-in, loaded, failed, excluded, added from code), in load order."""
        pm = self.manager
        for record in self.records:
            if record.status == "ok":
                plugin = pm.get_plugin(record.name)
                if plugin is not None:
                    record.hooks = _hooks_of(pm, plugin)
        known = {r.name for r in self.records}
        extra = [  # registered at run time, from code
            PluginRecord(name, hooks=_hooks_of(pm, plugin))
            for name, plugin in pm.list_name_plugin()
            if plugin is not None and name not in known
        ]
        return [*self.records, *extra]

    # -- calling hooks ------------------------------------------------------------------------

    def implemented(self, hook: str) -> bool:
        """True when some plugin implements ``hook``."""
        return bool(getattr(self.manager.hook, hook).get_hookimpls())

    def call_each(self, hook: str, /, *, each: HookKwargs | None = None, **kwargs: Any) -> HookOutcome:
        """Call every implementation of ``hook`` on its own; a raising plugin does not stop the rest.

        ``kwargs`` are the hook's arguments; ``each(record)`` adds arguments made for one plugin
        (a ``register`` callback that knows who registers). Old- and new-style wrappers run
        around the whole call, their teardown with the results.
        """
        outcome = HookOutcome()
        impls = getattr(self.manager.hook, hook).get_hookimpls()
        if not impls:
            return outcome
        wrappers: list[tuple[HookImpl, Generator[Any, Any, Any]]] = []
        for impl in reversed(impls):  # pluggy's call order: last registered first
            try:
                arguments = {**kwargs, **each(self.record(impl.plugin_name))} if each else kwargs
                result = impl.function(*[arguments[arg] for arg in impl.argnames])
                if impl.hookwrapper or impl.wrapper:
                    next(result)  # to its yield: the rest runs inside it
                    wrappers.append((impl, result))
                elif result is not None:
                    outcome.results.append(result)
            except Exception as exc:
                outcome.failures.append(HookFailure(self.record(impl.plugin_name), hook, exc))
        for impl, wrapper in reversed(wrappers):
            sent: Any = outcome.results
            if impl.hookwrapper:
                sent = pluggy.Result(outcome.results, None)
            try:
                wrapper.send(sent)
            except StopIteration as stop:
                if impl.wrapper and isinstance(stop.value, list):
                    outcome.results = stop.value
            except Exception as exc:
                outcome.failures.append(HookFailure(self.record(impl.plugin_name), hook, exc))
            else:
                wrapper.close()
        return outcome

    def notifier(self, hook: str, argument: str) -> Callable[[Any], None]:
        """``notify(value)``: :meth:`call_each` of ``hook`` with ``argument=value``, its failures
        reported, for a hook called very often (``run_event``: every text delta). Nothing is
        built per call unless a plugin wraps the hook (then it is :meth:`call_each`) or fails."""
        caller = getattr(self.manager.hook, hook)

        def notify(value: Any) -> None:
            impls = caller.get_hookimpls()
            for impl in impls:
                if impl.hookwrapper or impl.wrapper:
                    self.report(self.call_each(hook, **{argument: value}).failures)
                    return
            for impl in reversed(impls):  # pluggy's call order: last registered first
                try:
                    impl.function(*[value for _ in impl.argnames])
                except Exception as exc:
                    self.report([HookFailure(self.record(impl.plugin_name), hook, exc)])

        return notify

    def report(self, failures: Iterable[HookFailure], warn: Callable[[str], None] | None = None) -> None:
        """Say each failure once per (plugin, hook), in one line naming the plugin, its
        distribution and version, and the hook; a hook called on every tool call does not
        repeat it. ``warn`` prints the line (default: the ``shipmates`` logger, on stderr).

        The traceback follows only with ``SHIPMATES_STRICT=1`` or ``-v`` (the ``shipmates``
        logger at DEBUG).
        """
        for failure in failures:
            key = (failure.plugin.name, failure.hook)
            with self._reported_lock:
                if key in self._reported:
                    continue
                self._reported.add(key)
            verbose = strict_from() or log.isEnabledFor(logging.DEBUG)
            line = terminal_safe(f"{failure} (said once; -v or SHIPMATES_STRICT=1 shows the traceback)")
            if warn is None:
                log.warning("%s", line, exc_info=failure.error if verbose else None)
                continue
            warn(line)
            if verbose:
                import traceback

                warn("".join(traceback.format_exception(failure.error)).rstrip())

    def memo(self, name: str, key: object, build: Callable[[], T]) -> T:
        """``build()``, kept for this host until ``key`` changes (the model registry's cache)."""
        kept = self._memo.get(name)
        if kept is not None and kept[0] == key:
            return cast("T", kept[1])
        value = build()
        self._memo[name] = (key, value)
        return value


_hosts: weakref.WeakKeyDictionary[pluggy.PluginManager, PluginHost] = weakref.WeakKeyDictionary()
"""The host of each plugin manager a :class:`PluginHost` made or wrapped."""
_default: PluginHost | None = None
_lock = threading.Lock()


def default_host() -> PluginHost:
    """The process's shared host: built-in plugins plus installed ``shipmates.plugins``.

    Built on first use; raises :class:`PluginLoadError` only in strict mode.
    """
    global _default
    if _default is None:
        with _lock:  # agents running in worker threads may ask at the same moment
            if _default is None:
                _default = PluginHost.load()
    return _default


def host_of(plugins: pluggy.PluginManager | PluginHost | None) -> PluginHost:
    """The host for a custom plugin manager (``Agent(plugin_manager=)``), or the default host."""
    if plugins is None:
        return default_host()
    if isinstance(plugins, PluginHost):
        return plugins
    host = _hosts.get(plugins)
    if host is None:
        host = _hosts[plugins] = PluginHost(plugins)
    return host


def get_plugin_manager() -> pluggy.PluginManager:
    """The shared plugin manager (the default host's): built-in plugins plus installed ones."""
    return default_host().manager


def reset_plugin_manager() -> None:
    """Forget the shared host (tests, or after changing the plugin environment variables)."""
    global _default
    _default = None


def build_plugin_manager(
    *,
    allow: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    strict: bool | None = None,
    path: Sequence[str] | None = None,
    builtin: bool = True,
) -> tuple[pluggy.PluginManager, list[PluginRecord]]:
    """A new plugin manager and its plugin records (see :meth:`PluginHost.load`)."""
    host = PluginHost.load(allow=allow, exclude=exclude, strict=strict, path=path, builtin=builtin)
    return host.manager, host.records


def list_plugins() -> list[PluginRecord]:
    """Every plugin of the shared host (built-in, loaded, failed, excluded), in load order."""
    return default_host().list_plugins()


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
        plugin = ep.load()  # checked against the distribution's entry_points.txt first
        if inspect.isroutine(plugin):  # pluggy would register it and find no hooks in it
            module = ep.value.partition(":")[0].strip()
            raise PluginLoadError(
                f"its entry point {ep.value!r} names a function, which implements no hook: a plugin "
                f"entry point names a module (or an object) whose @hookimpl functions are the hooks; "
                f'write `{ep.name} = "{module}"` under [project.entry-points."shipmates.plugins"] '
                f"in {ep.distribution}'s pyproject.toml"
            )
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
