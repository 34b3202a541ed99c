"""Commands run the way a user types them: `bash -c` in a working folder, in their own
session so a stop reaches every process they start, output appended to a log file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.stack import wait_until

# The virtual environment that runs the tests holds the `hone` script.
BIN = Path(sys.executable).parent


def user_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Hone settings (a developer's HONE_DATABASE_URL
    must not leak in; HONE_TEST_* are kept), `hone` first on PATH, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HONE_") or k.startswith("HONE_TEST_")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


class ShellProcess:
    """`bash -c command` running in the background until stopped."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.command, self.log_path = command, log_path
        self._log = open(log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first match of `pattern` in the output; fails if the process exits first."""

        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.log())
            if match is None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"`{self.command}` exited ({self.proc.returncode}):\n{self.log()}"
                )
            return match

        return wait_until(found, timeout=timeout, what=f"{pattern!r} from `{self.command}`")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the session, as a service manager would; SIGKILL it if still running after
        `timeout`. Returns the command's exit status (-9 when it had to be killed)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        # Children that outlived the shell (none should) go with the session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode


def run_script(
    script: str, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `script` with `bash -c` to the end; on timeout kill its whole session and fail."""
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(
            f"script ran over {timeout}s\nstdout:\n{out}\nstderr:\n{err}"
        ) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
