"""Where the time of a one-shot turn goes, phase by phase, in one fresh process.

    python bench/breakdown.py            (run by bench/run.py in each throwaway environment)

Runs the same work as `shipmates chat --once "fib(8)" --captain fib`, through the public API,
timing each phase in order (each phase pays only for what earlier phases did not import yet):

  interpreter      process spawn until this script's first line (the parent's monotonic clock)
  import shipmates the package itself (lazy: no pydantic, pluggy, litellm)
  import asyncio   needed by the agent loop
  import pydantic  pydantic and pydantic_core
  pydantic plugins pydantic's own scan of every distribution for `pydantic` entry points,
                   paid on the first model it builds
  import core      shipmates' Agent, loop, tools (minus the above)
  list             shipmates.discover(load=False): entry-point scan (on-disk cache) + plugins
  load siblings    shipmates.discover(): imports and builds every sibling
  absorb           the fib captain absorbs the others (absorb_crew)
  turn             one turn on the offline model: fib(8)
  exit             the rest, until the parent sees the process end (interpreter shutdown)

Prints one JSON line: {"phases": {name: seconds}, "answer": "..."}.
"""

from __future__ import annotations

import json
import sys
import time

T_START = time.perf_counter()


def main() -> None:
    phases: dict[str, float] = {}
    last = T_START

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = now - last
        last = now

    import shipmates

    mark("import shipmates")
    import asyncio

    mark("import asyncio")
    import pydantic  # noqa: F401
    from pydantic import BaseModel, create_model  # noqa: F401

    mark("import pydantic")
    try:
        from pydantic.plugin._loader import get_plugins

        list(get_plugins())
    except Exception:  # private API of pydantic: the phase is then folded into the next ones
        pass
    mark("pydantic plugins")
    from shipmates import Agent, absorb_crew, discover  # noqa: F401

    mark("import core")
    listing = discover(load=False)
    mark("list")
    found = discover()
    mark("load siblings")
    captain = found.siblings["fib"]
    absorb_crew(captain, found)
    mark("absorb")
    answer = asyncio.run(captain.ainvoke("fib(8)"))
    mark("turn")
    print(
        json.dumps(
            {
                "t_start": T_START,
                "phases": phases,
                "answer": answer,
                "listed": len(listing.records),
                "loaded": len(found.siblings),
                "shipmates": shipmates.__version__,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
