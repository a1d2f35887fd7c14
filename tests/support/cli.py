"""Running the ``shipmates`` command line in-process, as a user would from a shell."""

from __future__ import annotations

import io
import sys
from typing import Any


def run_cli(capsys: Any, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``shipmates ARGV`` through ``main``: (exit status, stdout, stderr). argparse's SystemExit
    becomes a status; ``stdin`` (optional) is what the command reads."""
    from shipmates._cli._main import main

    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return status, out, err
