"""What a user sees when something is wrong: one line on stderr, never a traceback; and
`hone login`, whose saved key later commands use."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.client.cli_support import Result, cli_env, run
from tests.client.conftest import Live
from tests.support.api_process import free_port


def one_line(result: Result) -> str:
    assert result.code == 1, result
    assert result.stdout == "" and "Traceback" not in result.stderr, result
    (line,) = result.stderr.splitlines()
    assert line.startswith("hone: ")
    return line


def test_an_unreachable_api_is_named_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line(run(cli_env(url, "hone_x", tmp_path / "c.json"), "models", "list", "--json"))
    assert f"cannot reach the API at {url}" in line


def test_a_bad_key_says_so_and_a_missing_model_shows_the_detail(live: Live, tmp_path: Path) -> None:
    bad = one_line(run(cli_env(live.url, "hone_not_a_key", tmp_path / "c.json"), "models", "list"))
    assert "API key was refused" in bad and "hone login" in bad

    env = cli_env(live.url, live.key, tmp_path / "c.json")
    missing = one_line(run(env, "models", "show", "no-such-model"))
    assert "no-such-model" in missing
    assert "nope" in one_line(run(env, "predict", "nope", "--text", "hi"))
    usage = run(env, "predict", "x")
    assert usage.code == 2 and "nothing to predict" in usage.stderr


def test_login_checks_the_key_saves_it_0600_and_later_commands_use_it(
    live: Live, tmp_path: Path
) -> None:
    config = tmp_path / "hone" / "config.json"
    bare = cli_env(None, None, config)  # no HONE_API_URL / HONE_API_KEY: the saved login only

    refused = one_line(run(bare, "login", "--url", live.url, "--key-stdin", stdin="hone_bad\n"))
    assert "refused" in refused and not config.exists()

    done = run(bare, "login", "--url", live.url, "--key-stdin", stdin=f"{live.key}\n")
    assert done.code == 0, done.stderr
    assert live.url in done.stdout and str(config) in done.stdout
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    listed = run(bare, "models", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert listed.stdout.lstrip().startswith("[")
    # Flags win over the saved login.
    override = one_line(run(bare, "models", "list", "--key", "hone_other"))
    assert "API key was refused" in override
