"""A sibling (or plugin) cannot crash, pollute or stall discovery, nor be smuggled in by a cache.

Through real seams: distributions written on disk, the ``shipmates`` command run as a
subprocess. Covers issue 9, points 2 (attribute reads isolated), 4 (load output goes to
stderr), 8 (the discovery cache validated) and 10 (slow loads named, optional timeout).
"""

from __future__ import annotations

import json
import marshal
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shipmates import Agent, absorb_crew, discover
from shipmates._crew import _entrypoints, _loader
from shipmates._crew._entrypoints import AGENTS_GROUP, scan
from shipmates._paths import cache_path
from shipmates._settings import SettingsError
from support import plugin_spec, sibling_spec, write_dist_info

RAISING_ATTRIBUTE = """
class Sibling:
{plain}

    @property
    def {attr}(self):
        raise RuntimeError("{attr} exploded")

    def invoke(self, query):
        return query


def build_agent():
    return Sibling()
"""


def raising(attr: str) -> str:
    """A sibling whose ``attr`` property raises (its other attributes are fine)."""
    plain = {"name": '    name = "broken_' + attr + '"', "description": '    description = "d"'}
    plain.pop(attr, None)
    return RAISING_ATTRIBUTE.format(attr=attr, plain="\n".join(plain.values()))


NOISY_CAPTAIN = """
import sys
print("noisy captain printing at import")
sys.stdout.write("noisy captain writing at import\\n")
from shipmates import Agent


def build_agent():
    print("noisy captain printing in its provider")
    return Agent("noisy", description="A captain that talks too much.", model="offline")
"""

NOISY_SIBLING = """
print("echo printing at import")


class Echo:
    name = "echo"
    description = "Echoes."

    def invoke(self, query):
        return "echo got: " + query


def build_agent():
    print("echo printing in its provider")
    return Echo()
"""

NOISY_PLUGIN = """
print("plugin printing at import")
"""

SLOW = """
import time


def build_agent():
    time.sleep({seconds})
    raise RuntimeError("slow finished")
"""


def cli(site: Path, *argv: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    """``python -m shipmates *argv`` with ``site`` on the path and only these siblings' plugins."""
    full = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SHIPMATES_AGENTS"}}
    full["PYTHONPATH"] = str(site)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "shipmates", *argv],
        capture_output=True,
        text=True,
        env=full,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


def backdate(*paths: Path, seconds: float = 60) -> None:
    """Older than the disk cache's "racy" window, so a scan of them is written to disk."""
    past = time.time() - seconds
    for path in paths:
        os.utime(path, (past, past))


# -- point 2: a sibling attribute that raises is that sibling's failure ------------------------


@pytest.mark.parametrize("attr", ["name", "description", "tools", "skills", "timeout", "input_model"])
def test_raising_attribute_is_that_siblings_failure(fake_site: Any, attr: str) -> None:
    fake_site.sibling("healthy")
    name = "broken_" + attr if attr != "name" else "brokenname"
    fake_site.sibling(name, code=raising(attr), version="6.6.6")
    d = fake_site.discover()
    assert d.agents["healthy"].spec is not None
    (failure,) = d.failures
    line = failure.one_line()
    assert failure.name == name
    assert f"shipmates-{name.replace('_', '-')} 6.6.6" in line
    assert f"reading its {attr!r} attribute raised RuntimeError: {attr} exploded" in line
    assert "or report it to its authors" in line
    assert "SHIPMATES_EXCLUDE_AGENTS=" in line


def test_contract_checks_report_a_raising_attribute_instead_of_raising() -> None:
    from shipmates import NotASiblingError, is_sibling
    from shipmates._crew._sibling import SiblingAttributeError, is_available, sibling_spec, why_not_sibling

    class Hostile:
        description = "d"

        @property
        def name(self) -> str:
            raise SystemExit("name ends the process")

        @property
        def available(self) -> bool:
            raise RuntimeError("unknown")

        def invoke(self, query: str) -> str:
            return query

    hostile = Hostile()
    assert is_sibling(hostile) is False
    assert why_not_sibling(hostile) == "reading its 'name' attribute raised SystemExit: name ends the process"
    with pytest.raises(SiblingAttributeError) as info:
        sibling_spec(hostile)
    assert info.value.attribute == "name"
    assert is_available(hostile) is False
    with pytest.raises(NotASiblingError, match="reading its 'name' attribute raised SystemExit"):
        Agent("captain", model="offline").absorb(hostile)


def test_an_attribute_that_starts_raising_after_loading_fails_at_absorb(fake_site: Any) -> None:
    code = """
class Flaky:
    description = "fine once"
    reads = 0

    @property
    def name(self):
        Flaky.reads += 1
        if Flaky.reads > 1:
            raise ValueError("not any more")
        return "flaky"

    def invoke(self, query):
        return query


def build_agent():
    return Flaky()
"""
    fake_site.sibling("flaky", code=code, version="2.0")
    fake_site.sibling("healthy")
    d = fake_site.discover()
    captain = Agent("captain", model="offline")
    report = absorb_crew(captain, d)
    assert report.absorbed == ["healthy"]
    record = next(r for r in d.records if r.name == "flaky")
    assert record.status == "failed" and record.sibling is None
    assert "reading its 'name' attribute raised ValueError: not any more" in record.one_line()
    assert "shipmates-flaky 2.0" in report.lines()[0]


def test_plugin_registered_sibling_with_a_raising_name(fake_site: Any) -> None:
    from shipmates import get_plugin_manager, hookimpl

    class Bad:
        description = "d"

        @property
        def name(self) -> str:
            raise RuntimeError("no name")

        def invoke(self, query: str) -> str:
            return query

    class Plugin:
        @hookimpl
        def register_agents(self, register: Any) -> None:
            register(Bad())
            register(Bad(), name="named")

    get_plugin_manager().register(Plugin())
    d = fake_site.discover()
    assert {r.name: r.status for r in d.records} == {"Bad": "failed", "named": "failed"}
    assert all("reading its 'name' attribute raised RuntimeError: no name" in r.reason for r in d.failures)


def test_the_cli_lists_and_answers_beside_a_raising_sibling(fake_site: Any) -> None:
    fake_site.sibling("healthy", reply="healthy got: {query}")
    fake_site.sibling("brokenname", code=raising("name"), version="6.6.6")
    listed = cli(fake_site.path, "agents", "--json", "--load", "--only", "healthy,brokenname")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["healthy"]["status"] == "ok"
    assert rows["brokenname"]["status"] == "failed"
    broken = rows["brokenname"]
    assert (broken["distribution"], broken["version"]) == ("shipmates-brokenname", "6.6.6")
    assert "reading its 'name' attribute raised RuntimeError: name exploded" in rows["brokenname"]["reason"]
    once = cli(fake_site.path, "chat", "--once", "healthy hello", "--only", "healthy,brokenname")
    assert once.returncode == 0, once.stderr
    assert once.stdout == "healthy got: healthy hello\n"
    repl = cli(fake_site.path, "chat", "--only", "healthy,brokenname", stdin="/agents\nhealthy there\n")
    assert repl.returncode == 0, repl.stderr
    assert "Traceback" not in repl.stderr + repl.stdout
    assert "healthy got: healthy there" in repl.stdout


# -- point 4: what a load prints goes to stderr ------------------------------------------------


@pytest.fixture
def noisy(fake_site: Any) -> Any:
    fake_site.sibling("noisy", code=NOISY_CAPTAIN, version="1.0")
    fake_site.sibling("echo", code=NOISY_SIBLING, version="2.0")
    fake_site.add(plugin_spec("chatty", NOISY_PLUGIN, version="3.0"))
    return fake_site


def test_agents_json_stays_json_when_siblings_and_plugins_print(noisy: Any) -> None:
    env = {"SHIPMATES_PLUGINS": "chatty"}
    done = cli(noisy.path, "agents", "--json", "--load", "--only", "noisy,echo", env=env)
    assert done.returncode == 0, done.stderr
    rows = sorted((r["name"], r["status"]) for r in json.loads(done.stdout) if r["status"] != "excluded")
    assert rows == [("echo", "ok"), ("noisy", "ok")]
    for line in (
        "noisy captain printing at import",
        "noisy captain writing at import",
        "noisy captain printing in its provider",
        "echo printing at import",
        "echo printing in its provider",
        "plugin printing at import",
    ):
        assert line in done.stderr


def test_once_prints_only_the_answer_on_stdout(noisy: Any) -> None:
    done = cli(noisy.path, "chat", "--once", "echo ahoy", "--captain", "noisy", "--only", "echo")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "echo got: echo ahoy\n"
    assert "noisy captain printing in its provider" in done.stderr


def test_what_register_agents_prints_goes_to_stderr(
    fake_site: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipmates import get_plugin_manager, hookimpl

    class Echo:
        name = "echo"
        description = "Echoes."

        def invoke(self, query: str) -> str:
            return query

    class Plugin:
        @hookimpl
        def register_agents(self, register: Any) -> None:
            print("plugin printing while registering")
            register(Echo())

    get_plugin_manager().register(Plugin())
    assert fake_site.discover().agents["echo"].status == "ok"
    out, err = capsys.readouterr()
    assert "plugin printing while registering" in err and out == ""


def test_stdout_is_restored_after_a_failing_load(fake_site: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_site.sibling("loud", code="print('loud then broken')\nraise RuntimeError('broken')")
    before = sys.stdout
    d = fake_site.discover()
    assert sys.stdout is before
    assert d.failures[0].name == "loud"
    out, err = capsys.readouterr()
    assert "loud then broken" in err and "loud then broken" not in out


# -- point 10: slow loads are named; SHIPMATES_LOAD_TIMEOUT gives up on them --------------------


def test_slow_sibling_gets_a_notice_and_the_timeout_fails_only_it(fake_site: Any) -> None:
    fake_site.sibling("slow", code=SLOW.format(seconds=60), version="4.2")
    fake_site.sibling("healthy", reply="healthy got: {query}")
    started = time.monotonic()
    done = cli(
        fake_site.path,
        "agents",
        "--json",
        "--load",
        "--only",
        "slow,healthy",
        env={"SHIPMATES_LOAD_TIMEOUT": "2.5"},
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 0, done.stderr
    notice = r"still loading sibling 'slow' \(shipmates-slow 4\.2\): 2\.\d s so far\.\.\."
    assert re.search(notice, done.stderr)
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["healthy"]["status"] == "ok"
    assert rows["slow"]["status"] == "failed"
    reason = rows["slow"]["reason"]
    assert "still loading after 2.5 s (SHIPMATES_LOAD_TIMEOUT=2.5)" in reason
    assert "goes on in the background" in reason
    assert "fix shipmates-slow 4.2" in reason and "SHIPMATES_EXCLUDE_AGENTS=shipmates-slow" in reason


def test_notice_is_printed_once_and_a_fast_load_prints_none(
    fake_site: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_loader, "NOTICE_AFTER", 0.2)
    monkeypatch.setattr(_loader, "_watch", _loader._Watch())  # not one already waiting 2 s
    fake_site.sibling("sleepy", code=SLOW.format(seconds=0.6).replace("raise", "return None  #"))
    fake_site.sibling("quick")
    fake_site.discover()
    err = capsys.readouterr().err
    assert err.count("still loading sibling 'sleepy' (shipmates-sleepy 0.1.0)") == 1
    assert "quick" not in err


def test_timeout_applies_to_plugins_through_the_shared_loader(
    fake_site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_site.add(plugin_spec("sluggish", "import time\ntime.sleep(30)", version="0.7"))
    monkeypatch.setenv("SHIPMATES_LOAD_TIMEOUT", "0.3")
    (ep,) = _entrypoints.entry_points(_entrypoints.PLUGINS_GROUP, [str(fake_site.path)])
    with pytest.raises(_loader.EntryPointError) as info:
        ep.load()
    assert info.value.kind == "timeout"
    reason = info.value.reason(entry="sluggish", source="shipmates-plugin-sluggish 0.7", hint="")
    assert "still loading after 0.3 s" in reason and "raise SHIPMATES_LOAD_TIMEOUT" in reason


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_load_timeout_names_the_variable_and_the_range(
    fake_site: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    fake_site.sibling("healthy")
    monkeypatch.setenv("SHIPMATES_LOAD_TIMEOUT", value)
    expected = r"SHIPMATES_LOAD_TIMEOUT=.* is not valid: expected a number of seconds > 0"
    with pytest.raises(SettingsError, match=expected):
        fake_site.discover()
    assert fake_site.discover(load=False).agents  # listing loads nothing, so needs no timeout


def test_the_cli_says_which_setting_is_bad(fake_site: Any) -> None:
    fake_site.sibling("healthy")
    env = {"SHIPMATES_LOAD_TIMEOUT": "soon"}
    for argv in (["agents", "--load"], ["chat", "--once", "healthy hi"]):
        done = cli(fake_site.path, *argv, "--only", "healthy", env=env)
        assert done.returncode == 2, done.stderr
        expected = "error: SHIPMATES_LOAD_TIMEOUT='soon' is not valid: expected a number of seconds > 0"
        assert expected in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_load_under_a_timeout_that_raises_is_that_siblings_failure(
    fake_site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPMATES_LOAD_TIMEOUT", "30")
    fake_site.sibling("healthy")
    fake_site.sibling("exits", code="import sys\nsys.exit(3)")
    d = fake_site.discover()
    assert d.siblings["healthy"].invoke("x") == "healthy got: x"
    assert "SystemExit: 3" in d.failures[0].one_line()


# -- point 8: the discovery cache is validated ---------------------------------------------


@pytest.fixture
def cached_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    write_dist_info(sibling_spec("alpha", version="1.0"), site)
    (site / "evil_mod.py").write_text(
        "import os\nopen(os.environ['EVIL_MARKER'], 'w').write('imported')\n"
        "def boom(*args):\n    open(os.environ['EVIL_MARKER'], 'w').write('called')\n"
    )
    backdate(site)
    return site


def the_cache() -> Path:
    (found,) = sorted(Path(cache_path()).glob("entry-points-*.marshal"))
    return found


def rewrite(cache: Path, change: Callable[[Any], Any]) -> None:
    data = marshal.loads(cache.read_bytes())
    data = change(data)
    cache.write_bytes(marshal.dumps(data))


def _rows(data: Any) -> Any:
    return data["groups"][AGENTS_GROUP]


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


WRONG_SHAPES: dict[str, Callable[[Any], Any]] = {
    "not a dict": lambda d: [d],
    "groups a list": lambda d: _set(d, ("groups",), list(d["groups"].items())),
    "unknown group": lambda d: _set(d, ("groups", "os.system"), []),
    "missing group": lambda d: {**d, "groups": {AGENTS_GROUP: _rows(d)}},
    "rows a dict": lambda d: _set(d, ("groups", AGENTS_GROUP), {"alpha": _rows(d)[0]}),
    "row of four": lambda d: _set(d, ("groups", AGENTS_GROUP, 0), _rows(d)[0][:4]),
    "row with an int": lambda d: _set(d, ("groups", AGENTS_GROUP, 0, 3), 1),
    "row a tuple": lambda d: _set(d, ("groups", AGENTS_GROUP, 0), tuple(_rows(d)[0])),
    "malformed value": lambda d: _set(d, ("groups", AGENTS_GROUP, 0, 1), "os; rm -rf"),
    "empty name": lambda d: _set(d, ("groups", AGENTS_GROUP, 0, 0), ""),
    "source elsewhere": lambda d: _set(
        d, ("groups", AGENTS_GROUP, 0, 4), "/tmp/x.dist-info/entry_points.txt"
    ),
    "source not entry_points.txt": lambda d: _set(
        d, ("groups", AGENTS_GROUP, 0, 4), _rows(d)[0][4].replace("entry_points.txt", "RECORD")
    ),
    "stamps a str": lambda d: _set(d, ("stamps",), "0"),
    "format a str": lambda d: _set(d, ("format",), str(d["format"])),
}


@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_wrong_shaped_cache_is_rebuilt(cached_site: Path, shape: str) -> None:
    expected = scan([str(cached_site)])
    cache = the_cache()
    rewrite(cache, WRONG_SHAPES[shape])
    _entrypoints.clear_cache()
    assert scan([str(cached_site)]) == expected
    rebuilt = marshal.loads(cache.read_bytes())["groups"][AGENTS_GROUP]
    assert [row[:2] for row in rebuilt] == [["alpha", "shipmates_alpha:build_agent"]]


def test_cache_writable_by_others_is_not_read(cached_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan([str(cached_site)])
    cache = the_cache()
    cache.chmod(0o666)
    _entrypoints.clear_cache()
    calls = []
    real = _entrypoints._read_metadata
    monkeypatch.setattr(_entrypoints, "_read_metadata", lambda entries: calls.append(1) or real(entries))
    scan([str(cached_site)])
    assert calls == [1]


def test_warm_listing_reads_no_metadata(cached_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = scan([str(cached_site)])
    _entrypoints.clear_cache()
    monkeypatch.setattr(_entrypoints, "_read_metadata", lambda entries: pytest.fail("metadata read"))
    opened: list[str] = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    assert scan([str(cached_site)]) == expected
    assert not any(name.endswith("entry_points.txt") for name in opened)


@pytest.mark.parametrize("value", ["os:system", "evil_mod:boom"])
def test_poisoned_cache_is_not_imported(
    cached_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    marker = tmp_path / "marker"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(cached_site))
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system called"))
    scan([str(cached_site)])
    cache = the_cache()

    def poison(data: Any) -> Any:
        alpha = _rows(data)[0]
        _rows(data)[0] = [alpha[0], value, *alpha[2:]]  # the real sibling, pointed elsewhere
        _rows(data).append(["intruder", value, *alpha[2:]])  # a sibling nobody declares
        return data

    rewrite(cache, poison)
    _entrypoints.clear_cache()
    d = discover(path=[str(cached_site)], only=["alpha", "intruder"])
    assert not marker.exists()
    assert d.siblings["alpha"].invoke("q") == "alpha got: q"  # read again from its metadata
    assert d.agents["alpha"].provenance.entry_point == "shipmates_alpha:build_agent"
    (intruder,) = d.failures
    assert intruder.name == "intruder"
    assert "is not declared by shipmates-alpha 1.0" in intruder.one_line()
    assert "nothing was imported" in intruder.one_line()
    assert [row[0] for row in _rows(marshal.loads(cache.read_bytes()))] == ["alpha"]  # rebuilt
    sys.modules.pop("evil_mod", None)


def test_entry_point_load_refuses_what_its_file_does_not_declare(cached_site: Path, tmp_path: Path) -> None:
    (ep,) = _entrypoints.entry_points(AGENTS_GROUP, [str(cached_site)])
    assert ep.source.endswith("shipmates_alpha-1.0.dist-info/entry_points.txt")
    forged = ep._replace(value="os:system")
    with pytest.raises(_loader.EntryPointError, match=r"is not declared by shipmates-alpha 1\.0") as info:
        forged.load()
    assert info.value.kind == "undeclared"
    assert list(Path(cache_path()).glob("entry-points-*")) == []  # the caches were dropped


def test_the_cli_survives_wrong_shaped_and_poisoned_caches(cached_site: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    env = {"EVIL_MARKER": str(marker), "SHIPMATES_PLUGINS": ""}
    first = cli(cached_site, "agents", "--json", "--only", "alpha,intruder", env=env)
    assert first.returncode == 0, first.stderr
    caches = sorted(Path(cache_path()).glob("entry-points-*.marshal"))
    assert caches, "the first run did not write its cache"
    for cache in caches:
        cache.write_bytes(marshal.dumps({"format": _entrypoints._FORMAT, "groups": 7}))
    listed = cli(cached_site, "agents", "--only", "alpha,intruder", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "alpha" in listed.stdout and "Traceback" not in listed.stderr

    def poison(data: Any) -> Any:
        alpha = _rows(data)[0]
        _rows(data)[0] = [alpha[0], "evil_mod:boom", *alpha[2:]]
        _rows(data).append(["intruder", "evil_mod:boom", *alpha[2:]])
        return data

    for cache in caches:
        rewrite(cache, poison)
    loaded = cli(cached_site, "agents", "--json", "--load", "--only", "alpha,intruder", env=env)
    assert loaded.returncode == 0, loaded.stderr
    rows = {r["name"]: r for r in json.loads(loaded.stdout)}
    assert rows["alpha"]["status"] == "ok"
    assert rows["alpha"]["entry_point"] == "shipmates_alpha:build_agent"
    assert rows["intruder"]["status"] == "failed"
    assert not marker.exists()
