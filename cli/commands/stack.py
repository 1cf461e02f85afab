"""`pantau stack`: the private local broker and database, and their URLs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pantau.errors import ConfigError

if TYPE_CHECKING:
    from ops.stack.local import LocalStack


STACK_URLS = (
    *("owner", "ingest", "process", "api", "grafana", "superuser"),
    *("mqtt-ingest", "mqtt-process", "mqtt-simulator", "mqtt-admin"),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = sub.add_parser(
        "stack",
        help="the private local broker and database (no Docker needed)",
        description="Start, stop or inspect a private Mosquitto and PostgreSQL+TimescaleDB that "
        "run as unprivileged processes under PANTAU_STATE_DIR (default .pantau/), on ports "
        "PANTAU_STACK_MQTT_PORT (18830) and PANTAU_STACK_PG_PORT (54330). `up` installs missing "
        "servers with apt when run as root on Debian, and otherwise prints the commands to run.",
    )
    stack.add_argument("action", choices=["up", "down", "status", "url"])
    stack.add_argument(
        "service",
        nargs="?",
        choices=STACK_URLS,
        help='with url: whose URL to print (with its password), e.g. psql "$(pantau stack url '
        'grafana)"',
    )
    stack.set_defaults(func=cmd_stack)


def cmd_stack(args: argparse.Namespace) -> int:
    from ops.settings import StackSettings
    from ops.stack.local import LocalStack

    stack = LocalStack(StackSettings())
    if args.action == "up":
        from pantau.masking import mask_url

        state = stack.up()
        print(f"mosquitto  pid {state.mosquitto_pid}  {mask_url(state.mqtt_url)}")
        print(f"postgres   pid {state.postgres_pid}  {mask_url(state.database_url)}")
        print(
            "each command connects with its own account (passwords in "
            f"{state.state_dir}/secrets.json, URLs in {state.state_dir}/stack.json)"
        )
        print("\n".join(state.env_lines()))
    elif args.action == "url":
        print(_stack_url(stack, args.service))
    elif args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        for part, line in stack.status().items():
            print(f"{part:<10} {line}")
    return 0


def _stack_url(stack: LocalStack, service: str | None) -> str:
    """One of the local stack's URLs, password included (for psql and mosquitto_sub -L)."""
    state = stack.read_state()
    if state is None:
        raise ConfigError(f"no local stack in {stack.state_dir}", "run `pantau stack up`")
    if service is None:
        raise ConfigError("which URL?", "name one of: " + ", ".join(STACK_URLS))
    if service == "superuser":
        return state.database_url
    if service == "mqtt-admin":
        return state.mqtt_url
    if service.startswith("mqtt-"):
        return state.mqtt_urls[service.removeprefix("mqtt-")]
    return state.database_urls[service]
