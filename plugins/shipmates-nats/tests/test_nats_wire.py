"""Headers on shipmates' connections (``_wire``): a proxy's publish writes what nats-py writes, and
a connection made by the plugin reads header blocks as nats-py reads them, odd ones included."""

from __future__ import annotations

import asyncio
from typing import Any

HEADERS: list[dict[str, str] | None] = [
    None,  # an answer without headers
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    {"traceparent": "x", "Shipmates-Path": "captain,scout", "Shipmates-Timeout": "2.5"},
    {"Shipmates-Budget": "tokens=10 usd=0.5", "Accent": "caf\u00e9"},
    {"Line": "two\r\nlines"},  # nats-py cleans these: the fast path leaves them to it
    {" Padded ": " value "},
    {},
]
BLOCKS = [
    b"NATS/1.0\r\ntraceparent: 00-aa-bb-01\r\n\r\n",
    b"NATS/1.0\r\nA:b\r\nC:\tD \r\nbad name: x\r\n\xff: y\r\nnocolon\r\n: empty\r\nA: again\r\n\r\n",
    b"NATS/1.0\r\nX: \xc3\xa9\xff\r\nk\x1c: v\r\n x : v\r\n\r\n",
    b"NATS/1.0 503\r\n\r\n",
    b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1\r\n\r\n",
    b"NATS/1.0\r\n\r\n",
    b"NATS/1.0\r\n" + b"N" * 5000 + b": long name\r\n\r\n",
]


def test_proxy_publish_and_plugin_connections_match_nats_py(nats_server: Any) -> None:
    import nats
    from shipmates_nats import NatsSettings
    from shipmates_nats._config import connect
    from shipmates_nats._wire import Publisher

    async def scenario() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        plain = await nats.connect(nats_server.url)
        ours = await connect(NatsSettings(url=nats_server.url))
        got: dict[str, list[Any]] = {"plain": [], "ours": []}
        done = asyncio.Event()

        def keep(where: str) -> Any:
            async def cb(msg: Any) -> None:
                got[where].append((msg.subject, msg.reply, msg.data, msg.headers))
                if all(len(v) == 4 * len(HEADERS) for v in got.values()):
                    done.set()

            return cb

        await plain.subscribe("wire.>", cb=keep("plain"))
        await ours.subscribe("wire.>", cb=keep("ours"))
        await plain.flush()
        await ours.flush()
        publisher = Publisher(ours)
        send = ours._send_command

        async def recording(cmd: bytes, priority: bool = False) -> None:
            sent.append(bytes(cmd))
            await send(cmd, priority)

        sent: list[bytes] = []
        ours._send_command = recording
        for i, headers in enumerate(HEADERS):
            for n in range(2):  # the first publish of a subject is nats-py's own, the next ours
                await ours.publish("wire.nats", b"body %d" % i, reply=f"r.{i}.{n}", headers=headers)
                await publisher.publish("wire.ours", b"body %d" % i, f"r.{i}.{n}", headers)
        await asyncio.wait_for(done.wait(), 10)
        parsed_plain = [await plain._process_headers(b) for b in BLOCKS]
        parsed_ours = [await ours._process_headers(b) for b in BLOCKS]
        await plain.close()
        await ours.close()
        return got["plain"], got["ours"], parsed_plain, parsed_ours, sent

    plain, ours, parsed_plain, parsed_ours, sent = asyncio.run(scenario())
    written = {
        s: [c.replace(s.encode(), b"") for c in sent if c.split()[1] == s.encode()]
        for s in ("wire.nats", "wire.ours")
    }
    assert written["wire.ours"] == written["wire.nats"] and len(written["wire.ours"]) == 2 * len(HEADERS)
    assert plain == ours
    by_subject = {s: [m[1:] for m in plain if m[0] == s] for s in ("wire.nats", "wire.ours")}
    assert by_subject["wire.ours"] == by_subject["wire.nats"]
    assert any(m[3] == {"Accent": "caf\u00e9"} | {"Shipmates-Budget": "tokens=10 usd=0.5"} for m in plain)
    assert parsed_ours == parsed_plain


def test_received_header_names_a_peer_makes_up_are_not_kept(nats_server: Any) -> None:
    """A hostile peer can send a different megabyte-long header name with each request: the
    names the parser remembers stay short and few."""
    import nats
    from shipmates_nats._wire import MAX_CACHED_NAME, fast_headers

    async def scenario() -> tuple[dict[bytes, Any] | None, list[Any]]:
        nc = await nats.connect(nats_server.url)
        names = fast_headers(nc)
        parsed = [
            await nc._process_headers(b"NATS/1.0\r\n%s: v\r\nok: 1\r\n\r\n" % (b"%d" % i * 2000))
            for i in range(300)
        ]
        await nc.close()
        return names, parsed

    names, parsed = asyncio.run(scenario())
    assert names is not None and set(names) == {b"ok"}  # the long ones were read, not kept
    assert all(len(p) == 2 and p["ok"] == "1" for p in parsed) and MAX_CACHED_NAME < 2000


def test_trace_ids_differ_in_a_forked_child() -> None:
    import os

    from shipmates_nats._protocol import new_traceparent

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a crew's worker started by fork
        os.write(write, new_traceparent(None).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child.split("-")[1] != new_traceparent(None).split("-")[1]
