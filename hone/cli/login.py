"""`hone login`: check a key against the API, then save the URL and key for later commands
(hone.config: a file only its owner can read; HONE_CONFIG_FILE names another)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from rich.text import Text

import hone
import hone.config
from hone.cli.common import Context, Failure, UsageError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    login = sub.add_parser(
        "login", parents=[common], help="save the API's URL and your key for later commands"
    )
    login.add_argument(
        "--key-stdin", action="store_true", help="read the key from stdin (for scripts)"
    )
    login.set_defaults(handler=login_command)


def _key(args: argparse.Namespace) -> str:
    if args.key_stdin:
        key = sys.stdin.read().strip()
        if not key:
            raise Failure("no API key on stdin")
        return key
    if args.key:
        return str(args.key)
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the key on: pass it with --key-stdin")
    key = getpass.getpass("API key (not shown): ").strip()
    if not key:
        raise Failure("no API key given; nothing was saved")
    return key


def login_command(args: argparse.Namespace, ctx: Context) -> int:
    saved = hone.config.load_saved()
    url = hone.config.normalize_url(
        args.url or os.environ.get(hone.config.URL_ENV) or saved.url or hone.config.DEFAULT_URL
    )
    if not (args.key_stdin or args.key) and sys.stdin.isatty():
        ctx.out.show(Text.assemble("Logging in to ", (url, "bold"), " (another API: --url URL)"))
    key = _key(args)
    client = hone.Client(base_url=url, api_key=key)
    try:
        next(iter(client.models.list()), None)  # any authenticated read proves the key
    except hone.AuthenticationError as exc:
        raise Failure(
            f"the API at {url} refused this API key (401: {exc.detail or 'unknown key'}); "
            "nothing was saved. Check the key (`hone keys create` makes one) and try again."
        ) from None
    path = hone.config.save(url, key)
    ctx.out.result(
        {"url": url, "config_file": str(path)},
        Text.assemble("Logged in to ", (url, "bold"), f"; saved to {path}"),
    )
    return 0
