"""`shipmates serve --model ... --api-base ... -o ...`: served siblings without a model of their own
run on it (through litellm's real HTTP path, against a loopback OpenAI-compatible server), and the
remote card says which model each one uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support import PackageSpec, write_dist_info
from support.fake_openai import FakeOpenAI

pytestmark = [pytest.mark.nats, pytest.mark.slow]

WRITER = """
from shipmates import Agent


def writer():
    return Agent("writer", "Writes a short text about anything.")
"""


@pytest.fixture
def writer_site(tmp_path: Path) -> Path:
    site = tmp_path / "writer-site"
    site.mkdir()
    spec = PackageSpec(
        "shipmates-writer",
        "shipmates_writer",
        "0.1.0",
        WRITER,
        {"shipmates.agents": {"writer": "shipmates_writer:writer"}},
    )
    write_dist_info(spec, site)
    return site


def test_served_siblings_use_the_serve_model_and_say_so(
    nats_server: Any, serve: Any, writer_site: Path, crew_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipmates import discover

    llm = FakeOpenAI()
    try:
        serve(
            nats_server.url, "--namespace", "tm", "--model", "openai/fake", "--api-base", llm.url,
            "-o", "temperature=0",
            agents="writer,calc",
            env={"PYTHONPATH": os.pathsep.join([str(writer_site), str(crew_site)])},
        )  # fmt: skip
        monkeypatch.setenv("SHIPMATES_NATS_URL", nats_server.url)
        monkeypatch.setenv("SHIPMATES_NATS_NAMESPACE", "tm")
        monkeypatch.setenv("SHIPMATES_AGENTS", "writer,calc")
        found = discover()
        writer, calc = found.agents["writer"], found.agents["calc"]
        assert writer.provenance.origin == "remote", [r.one_line() for r in found.records]
        assert writer.sibling.model == "session default (openai/fake)"
        assert calc.sibling.model == "offline"  # its own model
        assert writer.sibling.invoke("a haiku") == "helper here"
        assert [(body["model"], body["temperature"]) for body, _ in llm.requests] == [("fake", 0)]
    finally:
        llm.close()
