"""How often a real model gets a delegation right: the demo prompts, scored.

Runs the conversations in ``bench/delegation_prompts.json`` against the demo crew (fib, factor,
exit) with a real model, for the general captain and for ``--captain fib``, each as it is and
with ``--triage`` (the captain first asks the model which siblings a request needs), several
times each at temperature 0, and writes the score (correct turns / turns) to
``bench/results/delegation.md``, which ``bench/run.py`` copies into RESULTS.md.

    eval "$(../shared/llm/start)"                 # the small local model (see ../shared/llm)
    .venv/bin/python bench/delegation_score.py    # ~25 min on 2 quiet cores
    kill "$SHIPMATES_TEST_LLM_PID"

A turn is correct when its answer contains every expected number (digits compared without
thousands separators), no sibling it must not use was called, and a goodbye ended the chat.
Whether it delegated as expected (for ``--captain fib``, "fib" is its own ``fibonacci`` tool) is
counted apart: a small model sometimes answers right from memory. Needs the demo crew installed
in this interpreter (the README's setup does that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "delegation_prompts.json"
OUTPUT = HERE / "results" / "delegation.md"
CAPTAINS = ("captain", "fib")
MODES = ("plain", "triage")


@dataclass
class Turn:
    conversation: str
    prompt: str
    captain: str
    answer: str = ""
    called: list[str] = field(default_factory=list)
    ended: bool = False
    error: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    """Why the answer is wrong (missing numbers, a sibling that must not be used, an error)."""
    missed: list[str] = field(default_factory=list)
    """Siblings the turn should have delegated to and did not (the answer may still be right)."""

    @property
    def correct(self) -> bool:
        return not self.problems

    @property
    def delegated(self) -> bool:
        return not self.missed


def _digits(text: str) -> str:
    return re.sub(r"(?<=\d)[,_ ](?=\d{3})", "", text)


def score(turn: Turn, spec: dict[str, Any]) -> None:
    """Fill ``turn.problems`` from what the turn should have done (``spec``)."""
    answer = _digits(turn.answer)
    numbers = set(re.findall(r"\d+", answer))
    for want in spec.get("expect", []):
        if want not in numbers:
            turn.problems.append(f"answer lacks {want}")
    called = set(turn.called)
    for name in spec.get("calls", []):
        if name not in called:
            turn.missed.append(f"{name} not called")
    for name in spec.get("never", []):
        if name in called:
            turn.problems.append(f"{name} called")
    if spec.get("ends") and not turn.ended:
        turn.problems.append("chat not ended")
    if turn.ended and not spec.get("ends"):
        turn.problems.append("chat ended")
    if turn.error and not turn.ended:
        turn.problems.append(f"error: {turn.error[:120]}")


def _called(captain: Any, events: list[Any]) -> list[str]:
    names = []
    for event in events:
        # The captain's own tools count as the captain's name ("fib" calling fibonacci is fib).
        names.append(event.tool if event.tool in captain.siblings else captain.name)
    return names


def label(captain: str, mode: str) -> str:
    """How a captain and mode are named in the report: ``fib``, ``fib --triage``."""
    return captain if mode == "plain" else f"{captain} --{mode}"


async def run_conversation(conversation: dict[str, Any], captain: str, mode: str = "plain") -> list[Turn]:
    from shipmates import EndSession, Session
    from shipmates._crew._assemble import assemble

    crew = assemble(None if captain == "captain" else captain)  # on the session model
    for record in crew.discovery.records:  # temperature 0 for every agent of the crew
        agent = record.sibling
        if agent is not None and hasattr(agent, "model_settings"):
            agent.model_settings = {**agent.model_settings, "temperature": 0}
    crew.captain.model_settings = {**crew.captain.model_settings, "temperature": 0}
    crew.captain.triage = mode == "triage"
    memory = Session()
    turns = []
    for spec in conversation["turns"]:
        turn = Turn(conversation["id"], spec["prompt"], label(captain, mode))
        start = time.perf_counter()
        try:
            result = await crew.captain.arun(spec["prompt"], session=memory)
            turn.answer = result.output
            turn.called = _called(crew.captain, result.events)
            if result.status != "ok":
                turn.error = f"status {result.status}"
        except EndSession as end:
            turn.ended = True
            turn.answer = str(end)
        except Exception as exc:  # a failed turn is a wrong answer, not the end of the run
            turn.error = f"{type(exc).__name__}: {exc}"
        turn.seconds = time.perf_counter() - start
        score(turn, spec)
        turns.append(turn)
    return turns


def render(turns: list[Turn], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        "## Delegation score with a real model",
        "",
        f"`bench/delegation_score.py --repeat {args.repeat}` against `{args.model}` "
        f"({os.environ.get('OPENAI_API_BASE', 'litellm default endpoint')}), temperature 0, "
        f"{len(turns)} turns in {elapsed / 60:.1f} min. A turn is correct when the answer has the expected "
        "numbers and no wrong sibling was called; delegations are counted apart "
        "(bench/delegation_prompts.json).",
        "",
        "| captain | correct answers / turns | score | delegated as expected | median s per turn |",
        "|---|---|---|---|---|",
    ]
    for captain in [label(c, m) for m in args.modes for c in args.captains]:
        mine = [t for t in turns if t.captain == captain]
        if not mine:
            continue
        good = sum(t.correct for t in mine)
        delegated = sum(t.delegated for t in mine)
        secs = sorted(t.seconds for t in mine)[len(mine) // 2]
        lines.append(
            f"| {captain} | {good} / {len(mine)} | {100 * good / len(mine):.0f}% | "
            f"{delegated} / {len(mine)} | {secs:.1f} |"
        )
    wrong = [t for t in turns if not t.correct or not t.delegated]
    if wrong:
        lines += ["", "Wrong answers, and right answers without the expected delegation:", ""]
        for t in wrong:
            answer = " ".join(t.answer.split())[:100]
            lines.append(
                f"- {t.captain} / {t.conversation} / {t.prompt!r}: {'; '.join(t.problems + t.missed)} "
                f"(answer: {answer!r})"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="openai/qwen-1.5b", help="the litellm model (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each conversation per captain")
    parser.add_argument(
        "--captains", default=",".join(CAPTAINS), help="comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="plain and/or triage, comma-separated (default: %(default)s)"
    )
    parser.add_argument("--only", default="", help="comma-separated conversation ids")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    args.captains = [c for c in args.captains.split(",") if c]
    args.modes = [m for m in args.modes.split(",") if m]
    if not set(args.modes) <= set(MODES):
        parser.error(f"--modes takes {' and '.join(MODES)}, got {','.join(args.modes)}")
    if not os.environ.get("OPENAI_API_BASE") and args.model.startswith(("openai/", "hosted_vllm/")):
        print(
            'OPENAI_API_BASE is not set: start the model first: eval "$(../shared/llm/start)"',
            file=sys.stderr,
        )
        return 2
    conversations = json.loads(PROMPTS.read_text())["conversations"]
    if args.only:
        wanted = set(args.only.split(","))
        conversations = [c for c in conversations if c["id"] in wanted]
    from shipmates._models._registry import session_model

    session_model.set(args.model)
    turns: list[Turn] = []
    start = time.perf_counter()
    for repeat in range(args.repeat):
        for captain, mode in [(c, m) for m in args.modes for c in args.captains]:
            for conversation in conversations:
                for turn in asyncio.run(run_conversation(conversation, captain, mode)):
                    turns.append(turn)
                    mark = ("ok " if turn.delegated else "ok~") if turn.correct else "BAD"
                    print(
                        f"{mark} {repeat + 1} {turn.captain:16} {turn.conversation:22} {turn.seconds:5.1f}s "
                        f"{'; '.join(turn.problems + turn.missed)}",
                        file=sys.stderr,
                        flush=True,
                    )
    text = render(turns, args, time.perf_counter() - start)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
