"""The `hone` command line: laptop mode, production processes, migrations, API keys; the user
commands (datasets, jobs, models, predictions) live in `hone.cli` and need no server settings."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.config import InvalidSettings, Settings, load_settings

if TYPE_CHECKING:
    from app.models import ApiKey

# The user commands: HTTP clients of a running API (hone/cli/), not server processes.
USER_COMMANDS = {
    "login": "save the API's URL and your key for the commands below",
    "datasets": "upload, list, show and delete datasets",
    "train": "start a fine-tuning job (and watch it with --watch)",
    "jobs": "list, show, watch, cancel jobs and read their events",
    "models": "list, show, alias and download models",
    "predict": "predict with a model from files, texts or JSON Lines",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hone", description="Hone transfer-learning service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="laptop mode: migrate, then run the API and a worker together")
    api = sub.add_parser("api", help="run the HTTP API (production)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    worker = sub.add_parser("worker", help="run a Celery worker (production)")
    worker.add_argument("--queues", default="train,data", help="comma-separated queues")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="processes (default: one per GPU for the train queue, else HONE_WORKER_CONCURRENCY;"
        " never more than the GPUs for the train queue)",
    )
    worker.add_argument("--hostname", default=None, help="Celery node name")
    # `hone up` on a terminal: print for a person, not JSON (app/console.py).
    worker.add_argument("--console", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("migrate", help="upgrade the registry database to the newest schema")
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key for a project (shown once)")
    create.add_argument("--project", required=True, help="project name (created if missing)")
    create.add_argument("--name", default="", help="a label for the key")
    listed = keys_sub.add_parser("list", help="list keys (ids, projects, labels; never secrets)")
    listed.add_argument("--project", default=None, help="only this project's keys")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (from `hone keys list`)")
    revoke.add_argument("key_id", help="the key's id, e.g. key_...")
    # Listed here for `hone --help`; parsed by hone.cli, which talks to a running API.
    for command, what in USER_COMMANDS.items():
        sub.add_parser(command, help=what, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in USER_COMMANDS:
        from hone.cli import main as user_main

        return user_main(argv)
    args = build_parser().parse_args(argv)
    # Settings are checked before anything starts: no worker, no port, no traceback.
    try:
        settings = load_settings()
    except InvalidSettings as exc:
        for line in exc.lines:
            print(f"hone: {line}", file=sys.stderr)
        return 2
    try:
        settings.ensure_dirs()
    except OSError as exc:
        print(
            f"hone: HONE_DATA_DIR={str(settings.data_dir)!r} cannot be used: {exc.strerror}. "
            "Set HONE_DATA_DIR to a folder this user can write.",
            file=sys.stderr,
        )
        return 2
    handler = {
        "up": _up,
        "api": _api,
        "worker": _worker,
        "migrate": _migrate,
        "keys": _keys,
    }[args.command]
    return handler(args, settings)


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from app.migrate import upgrade

    upgrade(settings.sqlalchemy_url)
    print(f"registry database at {_safe_url(settings)} is up to date")
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.keys import create_key, list_keys, revoke_key
    from app.db import make_engine, make_session_factory, transaction

    engine = make_engine(settings.sqlalchemy_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            if args.keys_command == "create":
                print(create_key(session, args.project, name=args.name))
            elif args.keys_command == "list":
                for key, project in list_keys(session, args.project):
                    print(_key_line(key, project))
            else:
                revoked = revoke_key(session, args.key_id)
                if revoked is None:
                    print(
                        f"hone: no API key has the id {args.key_id!r}; "
                        "`hone keys list` shows the ids.",
                        file=sys.stderr,
                    )
                    return 2
                print(f"{revoked.id} revoked at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
    finally:
        engine.dispose()
    return 0


def _key_line(key: ApiKey, project: str) -> str:
    """One `hone keys list` line: id, project, label, when made, whether it still works."""
    state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
    created = f"created {key.created_at:%Y-%m-%d %H:%M}"
    return f"{key.id}  {project}  {key.name or '-'}  {created}  {state}"


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.http_server import BoundedHttpToolsProtocol

    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        # httptools, with the request head bounded (431 past it): app/http_server.py.
        http=BoundedHttpToolsProtocol,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from app.logging import configure_logging
    from workers.devices import host_devices
    from workers.preload import preload

    # Before anything is imported or started: a pool larger than the GPUs is refused at once.
    concurrency = _worker_concurrency(args, settings, host_devices(settings))
    if isinstance(concurrency, str):
        print(f"hone: {concurrency}", file=sys.stderr)
        return 2
    if args.console:
        from app.console import use_console

        use_console()
    configure_logging(settings.log_level, settings.log_json)
    # Before the pool forks: every job process then starts with torch & co. imported.
    preload()
    from workers.celery_app import celery_app

    argv = [
        *(["--quiet"] if args.console else []),  # no banner: `hone up` printed its own
        "worker",
        "--queues",
        args.queues,
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    celery_app.worker_main(argv)
    return 0


def _worker_concurrency(
    args: argparse.Namespace, settings: Settings, devices: list[str]
) -> int | str:
    """The pool size, or why the one asked for cannot be: a worker that trains runs one
    process per GPU (workers/devices.py pins each to its own), and no more than that."""
    if args.concurrency is not None:
        asked, source = args.concurrency, f"--concurrency {args.concurrency}"
    elif "worker_concurrency" in settings.model_fields_set:
        asked = settings.worker_concurrency
        source = f"HONE_WORKER_CONCURRENCY={asked}"
    else:
        asked, source = None, ""
    trains = "train" in (queue.strip() for queue in args.queues.split(","))
    if not (trains and devices):
        return asked or settings.worker_concurrency
    if asked is None:
        return len(devices)
    if not 1 <= asked <= len(devices):
        return (
            f"{source} does not fit the {len(devices)} GPU(s) this worker trains on "
            f"({','.join(devices)}): one training process per GPU. Ask for 1 to {len(devices)}, "
            "set HONE_TRAIN_DEVICES to the GPUs to use, or run dataset processing in a worker "
            "of its own (--queues data)."
        )
    return asked


def _up(_args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine: migrate, make sure a key exists, run a worker and the API.

    On a terminal, both print for a person (a banner, then a line per notable event:
    app/console.py); into a pipe or a file, the JSON log lines of `hone api` and `hone worker`.
    """
    from app.auth.keys import create_key, has_any_key
    from app.db import make_engine, make_session_factory, transaction
    from app.migrate import upgrade

    console = sys.stdout.isatty()
    upgrade(settings.sqlalchemy_url)
    key = None
    if settings.bootstrap_api_key is None:
        engine = make_engine(settings.sqlalchemy_url)
        with transaction(make_session_factory(engine)) as session:
            key = None if has_any_key(session) else create_key(session, "default", name="hone up")
        engine.dispose()
    worker_command = [sys.executable, "-m", "app.cli", "worker"]
    if console:
        from app.console import banner, use_console

        use_console()
        worker_command.append("--console")
        print(banner(settings, _safe_url(settings), key), end="", flush=True)
    else:
        print(f"registry database at {_safe_url(settings)} is up to date")
        if key:
            print(f"\n  Your API key (shown once): {key}\n  export HONE_API_KEY={key}\n")
    # On a terminal the worker gets a process group of its own: Ctrl+C reaches `hone up` alone,
    # which stops the worker with one SIGTERM (a warm shutdown), not a second signal from the
    # terminal that Celery reads as "terminate the running tasks". Closing the terminal
    # (SIGHUP) stops Hone the same way.
    worker = subprocess.Popen(
        worker_command, env=os.environ.copy(), process_group=0 if console else None
    )
    # uvicorn re-raises the signal that stopped it once it has shut down: with the default
    # SIGTERM action that would end this process before the `finally` stops the worker.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if console:
        signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    else:
        url = f"http://{settings.host}:{settings.port}"
        print(f"Hone is starting on {url}  (dashboard: {url}/ui, docs: {url}/docs)")
    try:
        return _api(argparse.Namespace(workers=1), settings)
    finally:
        if console:
            print("\n  Stopping; a job in progress is checkpointed and resumes next time.")
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if console:
            print("  Hone has stopped.", flush=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
