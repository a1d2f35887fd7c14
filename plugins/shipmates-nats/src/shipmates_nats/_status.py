"""``shipmates status``: every sibling of the crews, from the supervisors on this machine
(``<state dir>/crews/*/state.json``) and the NATS heartbeats of replicas anywhere, with the
captain-side breaker states of this machine (``<state dir>/nats-breakers.json``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from ._heartbeat import NO_CREW, heartbeat_subject, interval
from ._supervisor import crews_dir, running_pid

ORDER = ("degraded", "busy", "serving", "starting", "draining", "stopped")


def local_crews() -> list[dict[str, Any]]:
    out = []
    for state_file in sorted(crews_dir().glob("*/state.json")):
        name = state_file.parent.name
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_file.read_text())
            if running_pid(name) == state.get("pid"):
                out.append(state)
    return out


async def _listen(settings: Any, wait: float) -> list[dict[str, Any]]:
    from ._config import connect

    beats: dict[tuple[str, int], dict[str, Any]] = {}
    nc = await connect(settings, name="shipmates-status")

    async def seen(msg: Any) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            beat = json.loads(msg.data)
            beats[(beat["host"], beat["pid"])] = beat

    try:
        await nc.subscribe(heartbeat_subject(settings.namespace), cb=seen)
        await asyncio.sleep(wait)
    finally:
        await nc.close()
    return list(beats.values())


def heartbeats(settings_list: list[Any], wait: float) -> list[list[dict[str, Any]]]:
    """For each of ``settings_list``, the heartbeats heard within the same ``wait`` seconds (one per
    replica, the newest): the servers are listened to together, not one after another."""

    async def listen_all() -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(_listen(settings, wait) for settings in settings_list)))

    return asyncio.run(listen_all()) if settings_list else []


def _breakers() -> dict[str, dict[str, Any]]:
    from shipmates.plugin import state_dir

    try:
        found = json.loads((state_dir() / "nats-breakers.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _sibling_state(entry: dict[str, Any]) -> str:
    if entry.get("degraded"):
        return "degraded"
    states = {r["state"] for r in entry["replicas"]}
    return next((s for s in ORDER[1:] if s in states), "stopped")


def _breaker_state(entry: dict[str, Any], breakers: dict[str, dict[str, Any]]) -> str:
    """The sibling's breaker state; each replica heard gets its own (``breaker``)."""
    prefix = f"{entry['namespace']}/{entry['name']}/"
    mine = {k[len(prefix) :]: b["state"] for k, b in breakers.items() if k.startswith(prefix)}
    own = [state for key, state in mine.items() if "/" not in key]  # the rest: "dist/replica"
    by_id = {key.rpartition("/")[2]: state for key, state in mine.items() if "/" in key}
    for r in entry["replicas"]:
        if r.get("id"):
            r["breaker"] = by_id.get(r["id"], "closed")
    state = own[-1] if own else "closed"
    replicas = [r for r in entry["replicas"] if "breaker" in r]
    tripped = [r for r in replicas if r["breaker"] != "closed"]
    if state == "closed" and tripped:
        if len(tripped) == len(replicas):
            return "open (every replica)"
        return f"closed ({len(tripped)} of {len(replicas)} replicas open)"
    return state


def collect(
    settings_list: list[Any], wait: float, crews: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The status document ``status --json`` prints; ``crews``: :func:`local_crews`, when read already."""
    crews = local_crews() if crews is None else crews
    siblings: dict[tuple[str, str], dict[str, Any]] = {}
    for crew in crews:
        for sib in crew["siblings"]:
            entry = {k: v for k, v in sib.items() if k not in ("restarts_in_window",)}
            entry.update(crew=crew["crew"], namespace=crew["namespace"])
            siblings[(crew["crew"], sib["name"])] = entry
    beats: list[dict[str, Any]] = []
    for settings, heard in zip(settings_list, heartbeats(settings_list, wait), strict=True):
        for beat in heard:
            beat["namespace"] = settings.namespace
            beats.append(beat)
    for beat in beats:
        for served in beat.get("siblings", []):
            key = (beat.get("crew") or NO_CREW, served["name"])
            entry = siblings.setdefault(
                key,
                {"name": served["name"], "crew": key[0], "namespace": beat["namespace"], "wanted": None,
                 "degraded": False, "restarts": 0, "last_error": None, "replicas": []},
            )  # fmt: skip
            entry.setdefault("distribution", served.get("distribution"))
            entry.setdefault("version", served.get("version"))
            replica = next(
                (r for r in entry["replicas"] if r["pid"] == beat["pid"] and r["host"] == beat["host"]), None
            )
            if replica is None:
                replica = {
                    "id": served.get("id"),
                    "worker": beat.get("worker") or None,
                    "host": beat["host"],
                    "pid": beat["pid"],
                    "local": False,
                }
                entry["replicas"].append(replica)
            state = beat.get("state", "serving")
            if state == "serving" and beat.get("inflight"):
                state = "busy"
            if replica.get("state") != "draining":
                replica["state"] = state
            replica.update(
                id=served.get("id"),
                inflight=beat.get("inflight", 0),
                max_inflight=beat.get("max_inflight"),
                handled=beat.get("handled", 0),
                version=served.get("version"),
            )
            replica["heard"] = True
    breakers = _breakers()
    for entry in siblings.values():
        entry["state"] = _sibling_state(entry)
        entry["inflight"] = sum(r.get("inflight", 0) for r in entry["replicas"])
        entry["versions"] = sorted({str(r["version"]) for r in entry["replicas"] if r.get("version")})
        entry["breaker"] = _breaker_state(entry, breakers)
    return {
        "crews": [
            {
                k: crew[k]
                for k in (
                    "crew",
                    "pid",
                    "host",
                    "file",
                    "nats",
                    "namespace",
                    "budget",
                    "max_active",
                    "events",
                )
            }
            for crew in crews
        ],
        "siblings": sorted(siblings.values(), key=lambda e: (e["crew"], e["name"])),
        "heartbeats": len(beats),
        "at": time.time(),
    }


def render(doc: dict[str, Any]) -> str:
    from shipmates.plugin import table

    lines: list[str] = []
    for crew in doc["crews"]:
        budget = crew["budget"]
        spent = []
        if budget["tokens"]:
            spent.append(f"{budget['spent_tokens']}/{budget['tokens']} tokens")
        if budget["usd"]:
            spent.append(f"${budget['spent_usd']:.4f}/${budget['usd']:g}")
        lines.append(
            f"crew {crew['crew']}: supervisor PID {crew['pid']} on {crew['host']}, {crew['nats']} namespace "
            f"{crew['namespace']}, budget {', '.join(spent) or 'unlimited'}"
            + (f" - PAUSED: {budget['paused']}" if budget["paused"] else "")
        )
    if not doc["siblings"]:
        lines.append(
            "no crew is running here and no replica was heard (start one with `shipmates up CREW.toml`)"
        )
        return "\n".join(lines)
    rows = [("CREW", "SIBLING", "STATE", "REPLICAS", "RESTARTS", "IN-FLIGHT", "BREAKER", "LAST ERROR")]
    for e in doc["siblings"]:
        live = sum(1 for r in e["replicas"] if r.get("state") in ("serving", "busy"))
        wanted = f"/{e['wanted']}" if e.get("wanted") is not None else ""
        versions = e.get("versions") or []
        name = e["name"] + (f" (versions {', '.join(versions)})" if len(versions) > 1 else "")
        rows.append(
            (e["crew"], name, e["state"], f"{live}{wanted}", str(e["restarts"]), str(e["inflight"]),
             e["breaker"], (e.get("last_error") or "-")[:60])
        )  # fmt: skip
    header, *body = table(rows)
    lines.append(header)
    for e, row in zip(doc["siblings"], body, strict=True):
        lines.append(row)
        for r in e["replicas"]:
            where = "local" if r.get("local") else "remote"
            lines.append(
                f"    {r.get('worker') or '-'} {where} {r['host']} PID {r['pid']}"
                + (f" v{r['version']}" if r.get("version") else "")
                + f": {r.get('state', '?')}, "
                f"{r.get('inflight', 0)} in flight, {r.get('handled', 0)} handled"
                + (f", circuit {r['breaker']}" if r.get("breaker", "closed") != "closed" else "")
            )
    return "\n".join(lines)


def default_wait() -> float:
    return interval() + 0.5
