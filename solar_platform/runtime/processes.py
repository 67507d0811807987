"""Running a setup program to its end, and saying why when it fails."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from solar_platform.runtime.host import SetupError

OUTPUT_TAIL = 2000  # characters of a failed program's output in the error: the cause sits at the end


def run_or_raise(args: Sequence[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `args` and return the result; on a non-zero exit raise `SetupError` with the output's tail.

    `what` names the step for the message (`"<what> failed (exit N):"`); `kwargs` go to
    `subprocess.run` (cwd, env, timeout). Output is captured as text either way.
    """
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "")
        raise SetupError(f"{what} failed (exit {result.returncode}):\n{output[-OUTPUT_TAIL:]}")
    return result
