"""Where the time of a one-shot turn goes, phase by phase, in one fresh process.

    python bench/breakdown.py            (run by bench/run.py in each throwaway environment)

Does the work of `shipmates chat --once "fib(8)" --captain fib` through the public API (as a
program embedding shipmates would; the CLI adds its own tricks, such as pausing the garbage
collector during start-up), timing each phase in order:

  interpreter      process spawn until this script's first line (the parent's monotonic clock)
  import shipmates the package itself (lazy: no pydantic, pluggy, litellm)
  import asyncio   needed by the agent loop
  list             shipmates.discover(load=False): entry-point scan (on-disk cache) + plugins
  load siblings    shipmates.discover(): imports and builds every sibling
  absorb           the fib captain absorbs the others (absorb_crew)
  turn             one turn on the offline model: fib(8)
  exit             the rest, until the parent sees the process end (interpreter shutdown)

For each phase it also notes which heavy packages were first imported during it.

Prints one JSON line: {"t_start", "phases": {name: seconds}, "imports": {name: [packages]}, "answer"}.
"""

from __future__ import annotations

import json
import sys
import time

T_START = time.perf_counter()
HEAVY = ("pydantic", "pydantic_core", "pluggy", "importlib_metadata", "importlib.metadata", "email",
         "prompt_toolkit", "litellm", "asyncio")  # fmt: skip


def main() -> None:
    phases: dict[str, float] = {}
    imports: dict[str, list[str]] = {}
    last = T_START
    seen = {m for m in HEAVY if m in sys.modules}

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = now - last
        last = now
        new = [m for m in HEAVY if m in sys.modules and m not in seen]
        seen.update(new)
        if new:
            imports[name] = new

    import shipmates

    mark("import shipmates")
    import asyncio

    mark("import asyncio")
    from shipmates import absorb_crew, discover

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
                "imports": imports,
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
