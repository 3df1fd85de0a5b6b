"""`python -m common.accounts COMMAND`: manage accounts from the command line.

    list                                      every account, one per line
    add USERNAME --name N --role R --region G the password is read from standard input
    password USERNAME                         a new password from standard input
    disable USERNAME | enable USERNAME        no login (sessions end, work released) / again
    move USERNAME REGION                      an operator's live work is released

`make password ACCOUNT=name` runs `password`. From a terminal the password is asked twice
without echo; from a pipe the first line is the password. Errors: one line, exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import psycopg
import redis

from common.adapters.presence import Presence
from common.resources import assignment_connection, redis_client
from common.services import accounts
from common.services.errors import ServiceError
from common.settings import Settings, load_settings


def read_password(stdin=None) -> str:
    """The new password: asked twice without echo on a terminal, else the first line."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise accounts.Refused("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m common.accounts",
                                     description="Manage accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every account")
    add = commands.add_parser("add", help="a new account (password from stdin)")
    add.add_argument("username")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("--region", required=True)
    for name, text in (("password", "a new password from stdin"),
                       ("disable", "no more logins"), ("enable", "allow logins again")):
        commands.add_parser(name, help=text).add_argument("username")
    move = commands.add_parser("move", help="to another region")
    move.add_argument("username")
    move.add_argument("region")
    return parser.parse_args(argv)


def run(settings: Settings, args: argparse.Namespace) -> str:
    """Carry out one command; returns the line to print."""
    with assignment_connection(settings, autocommit=True) as conn:
        if args.command == "list":
            return "\n".join(_line(user) for user in accounts.list_accounts(conn))
        if args.command == "add":
            user = accounts.add(conn, settings, args.username, args.name, args.role,
                                args.region, read_password())
            return f"added {_line(user)}"
        if args.command == "enable":
            return f"enabled {_line(accounts.enable(conn, args.username))}"
        presence = Presence(redis_client(settings), settings)
        if args.command == "password":
            user = accounts.set_password(conn, presence, settings, args.username,
                                         read_password())
            return f"password changed for {user['username']}; its sessions ended"
        if args.command == "disable":
            return f"disabled {_line(accounts.disable(conn, presence, settings, args.username))}"
        return f"moved {_line(accounts.move(conn, presence, settings, args.username, args.region))}"


def _line(user: dict) -> str:
    state = "disabled" if user["disabled"] else "enabled"
    return (f"{user['id']:>4} {user['username']} ({user['name']}) {user['role']} "
            f"{user['region']} {state}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = load_settings()
    try:
        print(run(settings, args))
    except ServiceError as error:
        print(f"accounts: {error.detail}", file=sys.stderr)
        return 1
    except (psycopg.Error, redis.RedisError) as error:
        text = str(error).strip().splitlines()
        print(f"accounts: {text[0] if text else type(error).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
