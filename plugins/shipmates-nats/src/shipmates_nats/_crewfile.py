"""A crew file (TOML): which siblings ``shipmates up`` keeps served, how many replicas, the NATS
server and credentials (by file or environment reference only), restart policy and budget.

```toml
[crew]
name = "demo"                     # default: the file's stem
nats = "nats://127.0.0.1:4222"
namespace = "shipmates"
max_active = 8                    # workers running at once, all siblings together
budget_tokens = 200000            # model tokens the crew may spend (0: no limit)
budget_usd = 5.0                  # and dollars (0: no limit)

[crew.credentials]                # files or environment variables, never the secret itself
token_file = "~/.config/shipmates/nats.token"

[restart]                         # defaults shown
backoff = 1                       # first restart delay (s), doubled per crash, capped by backoff_max
backoff_max = 300
healthy_reset = 300               # this long serving resets the backoff
max_restarts = 5                  # more restarts than this within window: the sibling is degraded
window = 1800
heartbeat = 3                     # serve's heartbeat interval (s)
silent_after = 15                 # no heartbeat this long: the worker is restarted
drain_timeout = 10                # scale down / down: in-flight calls may finish this long
kill_after = 10                   # then SIGKILL

[siblings.echo]
replicas = 2
model = "openai/gpt-4o-mini"      # SHIPMATES_MODEL of its workers
env = { LOG_LEVEL = "info" }
```
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import _ENV as ENV_VARIABLES
from ._errors import NatsSetupError

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KEYS = (
    "token_file",
    "user",
    "password_file",
    "nkey_file",
    "creds",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_hostname",
)
CREDENTIAL_KEYS = {
    key: ENV_VARIABLES[key.removesuffix("_file") if key == "nkey_file" else key] for key in _KEYS
}
"""Crew-file credential keys and the worker environment variable each becomes (paths and names only)."""
_SECRETS = ("token", "password", "nkey", "seed")


def credential_env(credentials: dict[str, str]) -> dict[str, str]:
    """The environment variables that pass a crew's ``[crew.credentials]`` references on."""
    return {CREDENTIAL_KEYS[k]: v for k, v in credentials.items()}


@dataclass(frozen=True)
class RestartPolicy:
    backoff: float = 1.0
    backoff_max: float = 300.0
    healthy_reset: float = 300.0
    max_restarts: int = 5
    window: float = 1800.0
    heartbeat: float = 3.0
    silent_after: float = 15.0
    drain_timeout: float = 10.0
    kill_after: float = 10.0

    def delay(self, crashes: int) -> float:
        """Wait before restart number ``crashes`` (1-based) since the worker was last healthy."""
        return float(min(self.backoff * 2 ** max(0, crashes - 1), self.backoff_max))


@dataclass(frozen=True)
class SiblingPlan:
    name: str
    replicas: int = 1
    model: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """What its workers get on top of the crew's environment."""
        env = dict(self.env)
        if self.model:
            env["SHIPMATES_MODEL"] = self.model
        return env


@dataclass(frozen=True)
class Crew:
    name: str
    siblings: dict[str, SiblingPlan]
    nats: str | None = None
    namespace: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    max_active: int = 64
    budget_tokens: int = 0
    budget_usd: float = 0.0
    restart: RestartPolicy = RestartPolicy()
    path: Path | None = None

    def worker_env(self) -> dict[str, str]:
        """NATS settings for every worker: URL, namespace and credential *references*."""
        env = credential_env(self.credentials)
        if self.nats:
            env["SHIPMATES_NATS_URL"] = self.nats
        if self.namespace:
            env["SHIPMATES_NATS_NAMESPACE"] = self.namespace
        return env


def _number(table: dict[str, Any], key: str, default: float, where: str, *, integer: bool = False) -> Any:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise NatsSetupError(f"{where}: '{key}' must be a number >= 0, got {value!r}")
    if integer and not isinstance(value, int):
        raise NatsSetupError(f"{where}: '{key}' must be a whole number, got {value!r}")
    return value


def _credentials(table: dict[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if key in _SECRETS:
            raise NatsSetupError(
                f"{where}: [crew.credentials] '{key}' holds a secret inline; put it in a file only you "
                f'can read and name it ({key}_file = "PATH"), or set it in the environment of `shipmates up`'
            )
        if key not in CREDENTIAL_KEYS or not isinstance(value, str):
            raise NatsSetupError(
                f"{where}: [crew.credentials] takes {', '.join(sorted(CREDENTIAL_KEYS))} "
                f"(strings), got '{key}'"
            )
        out[key] = os.path.expanduser(value) if key != "user" and key != "tls_hostname" else value
    return out


def parse_crew(data: dict[str, Any], *, name: str, path: Path | None = None) -> Crew:
    where = str(path) if path else "crew"
    crew = data.get("crew", {})
    name = crew.get("name", name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise NatsSetupError(f"{where}: crew name {name!r}: use letters, digits, '.', '_' or '-'")
    siblings: dict[str, SiblingPlan] = {}
    for sname, table in data.get("siblings", {}).items():
        if not _NAME_RE.match(sname) or not isinstance(table, dict):
            raise NatsSetupError(f"{where}: [siblings.{sname}] must be a table named after a sibling")
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise NatsSetupError(f"{where}: [siblings.{sname}] env must map names to strings")
        siblings[sname] = SiblingPlan(
            sname,
            replicas=_number(table, "replicas", 1, f"{where} [siblings.{sname}]", integer=True),
            model=table.get("model"),
            env=dict(env),
        )
    if not siblings:
        raise NatsSetupError(f"{where}: no sibling to run: add [siblings.NAME] tables (replicas = N)")
    restart_table = data.get("restart", {})
    policy = RestartPolicy(
        **{
            k: _number(
                restart_table, k, getattr(RestartPolicy, k), f"{where} [restart]", integer=k == "max_restarts"
            )
            for k in RestartPolicy.__dataclass_fields__
        }
    )
    unknown = set(restart_table) - set(RestartPolicy.__dataclass_fields__)
    if unknown:
        raise NatsSetupError(f"{where}: [restart] has unknown keys {sorted(unknown)}")
    return Crew(
        name=name,
        siblings=siblings,
        nats=crew.get("nats"),
        namespace=crew.get("namespace"),
        credentials=_credentials(crew.get("credentials", {}), where),
        max_active=_number(crew, "max_active", 64, f"{where} [crew]", integer=True),
        budget_tokens=_number(crew, "budget_tokens", 0, f"{where} [crew]", integer=True),
        budget_usd=float(_number(crew, "budget_usd", 0.0, f"{where} [crew]")),
        restart=policy,
        path=path,
    )


def load_crew(path: Path) -> Crew:
    """Read and check a crew file; errors name the file and the fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NatsSetupError(f"cannot read crew file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NatsSetupError(f"crew file {path} is not valid TOML: {exc}") from None
    return parse_crew(data, name=path.stem, path=path.resolve())
