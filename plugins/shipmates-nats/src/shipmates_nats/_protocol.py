"""Wire protocol shared by ``serve`` and the remote proxy: subjects, headers, the sibling card.

Everything a crew uses lives under its namespace ``NS`` (a subject prefix), replies included,
so NATS permissions on ``NS.>`` (plus the crew's two JetStream streams for durable jobs: the
plugin README has the exact configuration) isolate one crew:

- ``NS.$SRV.INFO|PING|STATS[.name[.id]]``: micro discovery subjects (the micro protocol, prefixed);
- ``NS.agents.<name>.<dist>.invoke``: the invoke endpoint of the sibling ``name`` from the
  distribution ``dist`` (queue group ``shipmates``): a captain calls only the distribution it
  absorbed, never a rival serving the same name;
- ``NS._INBOX.>``: every reply (connections use this inbox prefix);
- ``NS.jobs.<name>.<dist>`` / ``NS.results.<key>.<tag>``: durable delegation (JetStream). The
  job carries a secret only its caller and the worker that takes it know; the result subject's
  ``tag`` and the result's MAC (header ``Shipmates-Mac``) derive from it, so nobody else can
  make the caller accept a result.

Request body: the query as plain text for untyped siblings (as ``{"query": "..."}`` when it is
empty or starts with ``{``), the JSON input object for typed ones; so ``nats req`` works too.
Response body: the sibling's text; errors use the micro error headers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import random
import re
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipmates.plugin import Budget, SiblingSpec

QUEUE_GROUP = "shipmates"
CARD_KEY = "shipmates.card"
PROTOCOL = "shipmates/2"
"""2: per-distribution invoke and job subjects, inboxes under the namespace, signed durable results."""
STREAM_PROTOCOL = "shipmates/2+stream"
"""2 plus streamed replies: a caller sending ``Shipmates-Stream: 1`` gets an ack, the run's events,
keep-alives and an end frame (answer and usage) on its reply subject. The card's ``protocols``
lists what a replica speaks; a captain streams only from a replica that lists this."""
PROTOCOLS = (PROTOCOL, STREAM_PROTOCOL)

H_TRACEPARENT = "traceparent"
H_TIMEOUT = "Shipmates-Timeout"
H_CALLER = "Shipmates-Path"
H_ERROR = "Nats-Service-Error"
H_ERROR_CODE = "Nats-Service-Error-Code"
H_MSG_ID = "Nats-Msg-Id"
H_STATUS = "Shipmates-Status"
H_KEY = "Shipmates-Key"
H_SECRET = "Shipmates-Secret"
"""The durable job's secret (hex): the worker signs the result with it."""
H_MAC = "Shipmates-Mac"
H_EVENTS = "Shipmates-Events"
H_BUDGET = "Shipmates-Budget"
"""What the caller's run tree may still spend (``shipmates.plugin.Budget.to_header``)."""
"""The served sibling's own tool calls (JSON list), so the captain's trace shows them too."""
EVENTS_MAX = 50
H_STREAM = "Shipmates-Stream"
"""On a request: ``1``, stream the reply. On the frames of a streamed reply: ``ack``, ``alive`` or
``end``; an event frame has no headers at all (its body is one JSON event: see ``_frames``)."""
H_CANCEL = "Shipmates-Cancel"
"""On the ack: the subject the caller publishes to (empty body) to cancel the call."""
H_USAGE = "Shipmates-Usage"
"""On the end frame: the usage of the served run's whole tree (JSON)."""
H_REQUIRE = "Shipmates-Require"
"""On a durable job: the version range its worker must be in (others give it back)."""
F_ACK, F_ALIVE, F_END = "ack", "alive", "end"
EVENTS_BYTES = 16_000

# error codes (strings, as the micro protocol wants)
E_BAD_REQUEST = "400"
E_TOO_LARGE = "413"
E_TIMEOUT = "504"
E_FAILED = "500"
E_UNAVAILABLE = "503"
E_END_SESSION = "299"


def srv_prefix(ns: str) -> str:
    return f"{ns}.$SRV"


def inbox_prefix(ns: str) -> str:
    """Replies of a crew's connections travel under ``NS._INBOX``: other crews cannot read them."""
    return f"{ns}._INBOX"


def dist_token(distribution: str | None) -> str:
    """A distribution as one subject token: PEP 503 normalised (``Foo_Bar`` -> ``foo-bar``)."""
    token = re.sub(r"[^a-z0-9-]", "-", re.sub(r"[-_.]+", "-", (distribution or "").lower())).strip("-")
    return token or "unknown"


def invoke_subject(ns: str, name: str, distribution: str | None) -> str:
    return f"{ns}.agents.{name}.{dist_token(distribution)}.invoke"


def jobs_subject(ns: str, name: str, distribution: str | None) -> str:
    return f"{ns}.jobs.{name}.{dist_token(distribution)}"


def consumer_name(name: str, distribution: str | None) -> str:
    """The durable consumer of one sibling's jobs (no dots allowed; the token has no ``_``)."""
    return f"{name}_{dist_token(distribution)}"


def results_subject(ns: str, key: str, tag: str) -> str:
    return f"{ns}.results.{key}.{tag}"


def stream_name(ns: str, kind: str) -> str:
    """JetStream stream names: ``SHIPMATES_<NS>_JOBS`` / ``..._RESULTS``."""
    return f"SHIPMATES_{ns.upper().replace('-', '_')}_{kind}"


_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def check_key(key: str) -> str:
    """An idempotency key becomes a subject token: letters, digits, '_' and '-' only."""
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid idempotency key {key!r}: use 1-128 letters, digits, '_' or '-'")
    return key


def result_tag(secret: bytes) -> str:
    """The last token of a durable job's result subject: unguessable without the job's secret."""
    return hmac.new(secret, b"shipmates result subject", hashlib.sha256).hexdigest()[:32]


def result_mac(secret: bytes, key: str, headers: dict[str, str], data: bytes) -> str:
    """What a worker signs a durable result with: key, status, error and body under the job's secret."""
    fields = [key, headers.get(H_STATUS, ""), headers.get(H_ERROR_CODE, ""), headers.get(H_ERROR, "")]
    signed = json.dumps(fields).encode() + b"\0" + data
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def semver(version: str | None) -> str:
    """The micro protocol insists on semver; coerce ``"1.2"`` or ``"2024.1.post1"`` to one."""
    parts = re.findall(r"\d+", version or "")
    major, minor, patch = ([*parts, "0", "0", "0"])[:3]
    return f"{int(major)}.{int(minor)}.{int(patch)}"


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent: a child span of ``parent`` (same trace id), or a new trace."""
    if parent:
        if len(parent) == 55 and parent[2] == "-" and parent[35] == "-":  # version 00, as we send
            return f"00-{parent[3:35]}-{_rand(8).hex()}-01"
        bits = parent.split("-")
        if len(bits) == 4 and len(bits[1]) == 32:
            return f"00-{bits[1]}-{_rand(8).hex()}-01"
    ids = _rand(24).hex()  # trace id and span id from one draw
    return f"00-{ids[:32]}-{ids[32:]}-01"


def continue_trace(parent: str | None) -> str:
    """The span a served call runs in: the caller's traceparent as it is when it has the form
    captains send (version 00), so a call draws no new ids; else :func:`new_traceparent`.

    Nested calls are children of it (same trace id, new span ids): without OpenTelemetry no span
    is recorded, so a span of the replica's own would only cost a random draw per call."""
    if parent and len(parent) == 55 and parent.startswith("00-") and parent[35] == "-" and parent[52] == "-":
        return parent
    return new_traceparent(parent)


_rand = random.randbytes
"""Trace and span ids need uniqueness, not secrecy: the random module's own PRNG, seeded from
os.urandom and reseeded in a forked child (bytes to hex: a third cheaper than formatting an int
of the same bits)."""


def trace_id(traceparent: str | None) -> str | None:
    bits = (traceparent or "").split("-")
    return bits[1] if len(bits) == 4 else None


def build_card(
    spec: SiblingSpec, *, distribution: str | None, version: str | None, timeout: float | None, durable: bool
) -> dict[str, Any]:
    """An A2A-style card: what a captain needs to absorb the sibling without importing it."""
    schema = spec.input_model.model_json_schema() if spec.input_model is not None else None
    return {
        "protocol": PROTOCOL,
        "protocols": list(PROTOCOLS),
        "host": socket.gethostname(),
        "name": spec.name,
        "description": spec.description,
        "distribution": distribution,
        "version": version,
        "inputSchema": schema,
        "timeout": timeout,
        "durable": durable,
        "tools": [{"name": t.name, "description": t.description[:200]} for t in spec.tools],
        "skills": list(spec.skills),
    }


def card_metadata(card: dict[str, Any]) -> dict[str, str]:
    """Micro service metadata (str -> str) carrying the card."""
    return {
        CARD_KEY: json.dumps(card, separators=(",", ":")),
        "distribution": card.get("distribution") or "",
        "version": card.get("version") or "",
    }


def parse_card(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card from service metadata, or None when the service is not a shipmates sibling."""
    raw = (metadata or {}).get(CARD_KEY)
    if not isinstance(raw, str):
        return None
    try:
        card = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(card, dict) or not isinstance(card.get("name"), str):
        return None
    return card


def read_budget(value: str | None) -> Budget | None:
    """The caller's remaining budget from its :data:`H_BUDGET` header (None: it has none)."""
    if not value:
        return None
    from shipmates.plugin import Budget

    try:
        return Budget.from_header(value)
    except ValueError as exc:
        raise ValueError(f"the request's {H_BUDGET} header {value!r} is not valid ({exc})") from None


def encode_request(value: Any) -> bytes:
    """A query string, a pydantic instance or a dict -> request body.

    A query goes as plain UTF-8 text (no JSON to build or parse), unless it is empty or starts
    with ``{``: then as ``{"query": ...}`` so it cannot be mistaken for an input object.
    """
    if isinstance(value, str):
        if value and not value.lstrip().startswith("{"):
            return value.encode()
        return json.dumps({"query": value}).encode()
    if hasattr(value, "model_dump"):
        return json.dumps(value.model_dump(mode="json", exclude_unset=True)).encode()
    return json.dumps(value).encode()


def plain_query(data: bytes) -> str | None:
    """The query when the body is plain text (the common case), else None: see :func:`decode_request`."""
    if not data or data[0] in _NOT_PLAIN:
        return None
    return data.decode("utf-8", errors="replace")


_NOT_PLAIN = frozenset(b"{ \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f") | frozenset(range(0x80, 0x100))
"""First bytes that need :func:`decode_request`: JSON, whitespace, non-ASCII (may be Unicode space)."""


def decode_request(data: bytes) -> dict[str, Any]:
    """Request body -> arguments: a JSON object as it is, any other text as ``{"query": text}``."""
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return {"query": text}
        if isinstance(obj, dict):
            return obj
    return {"query": text}


def capped_timeout(asked: str | None, own: float, cap: float) -> float:
    """How long a call may run: the caller's ``Shipmates-Timeout`` when it is a positive finite
    number of seconds, else the sibling's own timeout; never more than ``cap``."""
    limit = own
    if asked:
        with contextlib.suppress(ValueError):
            value = float(asked)
            if math.isfinite(value) and value > 0:
                limit = value
    return min(limit, cap)
