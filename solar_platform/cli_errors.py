"""The errors a user can fix, as the one line `solar-platform` prints for them (cli.main, exit code 2).

Bad configuration (`SettingsError`), the machine (`SetupError`: Java, ports), MariaDB (unreachable,
wrong password, a missing grant, an unknown database, an unmigrated schema) and Kafka (unreachable,
login refused, no ACL). A refused Kafka login is told from an outage where the client is made
(`kafka_clients.KafkaLoginRefused`, which names the user and its password variable). Anything else
is a bug, and keeps its traceback (`user_error_message` -> None).

Pure: it reads exceptions (and the settings, for where the services are), never connects anywhere.
MariaDB errors arrive from pymysql, bare (yoyo's `db migrate`) or wrapped by SQLAlchemy (`.orig`),
and often as the cause of another exception: the whole `__cause__`/`__context__` chain is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import kafka.errors as kafka_errors
import pymysql
from sqlalchemy.exc import DBAPIError

from solar_platform import kafka_clients
from solar_platform.runtime.host import SetupError
from solar_platform.settings import Settings, SettingsError

STACK_UP = "`solar-platform stack up`"

# MariaDB's error codes (server 1xxx, client 2xxx) for what a user fixes rather than a programmer.
ACCESS_DENIED = 1045  # wrong password, or no such user
DB_ACCESS_DENIED = 1044  # the user may not use that database
TABLE_ACCESS_DENIED = 1142  # a statement the user lacks the privilege for, on a table
COLUMN_ACCESS_DENIED = 1143
ROUTINE_ACCESS_DENIED = 1370
PRIVILEGE_NEEDED = 1227  # "you need (at least one of) the X privilege(s)"
BAD_DATABASE = 1049
NO_SUCH_TABLE = 1146
HOST_NOT_ALLOWED = 1130
TOO_MANY_CONNECTIONS = 1040
CANNOT_CONNECT = (2002, 2003)  # socket / TCP
UNKNOWN_HOST = 2005
CONNECTION_LOST = (2006, 2013)

# Operations MariaDB refused.
_GRANT_CODES = (DB_ACCESS_DENIED, TABLE_ACCESS_DENIED, COLUMN_ACCESS_DENIED, ROUTINE_ACCESS_DENIED, PRIVILEGE_NEEDED)
_KAFKA_LOGIN = (kafka_errors.SaslAuthenticationFailedError, kafka_errors.IllegalSaslStateError,
                kafka_errors.UnsupportedSaslMechanismError)

_USER = r"user '(?P<user>[^']*)'@'(?P<host>[^']*)'"
_MYSQL_ROLES = ("migrator", "stream", "dagster", "readonly")


def user_error_message(exc: BaseException, settings: Settings | None = None) -> str | None:
    """The one-line message for an error the user can fix, or None for anything else (a bug).

    `settings` (optional) says where MariaDB and Kafka were expected and which variable holds
    whose password; without them the messages name what the exception itself knows.
    """
    for error in _chain(exc):
        message = _message(error, settings)
        if message is not None:
            return message
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _message(error: BaseException, settings: Settings | None) -> str | None:
    if isinstance(error, SetupError | SettingsError):
        return str(error)  # written for the user already (a SetupError may end with a log's last lines)
    if isinstance(error, DBAPIError) and isinstance(error.orig, pymysql.err.MySQLError):
        error = error.orig
    if isinstance(error, pymysql.err.MySQLError):
        message = _mysql_message(error, settings)
    elif isinstance(error, kafka_errors.KafkaError):
        message = _kafka_message(error, settings)
    else:
        return None
    return None if message is None else " ".join(message.split())  # one line, whatever the drivers said


# ---------------------------------------------------------------- MariaDB
def _mysql_message(error: pymysql.err.MySQLError, settings: Settings | None) -> str | None:
    code, text = _code_and_text(error)
    address = _mysql_address(settings, text)
    where = f"MariaDB at {address}" if address else "MariaDB"
    user = re.search(_USER, text)
    who = f"user '{user['user']}'" if user else "the user"

    if code == ACCESS_DENIED:
        return (f"{where} refused {who} (access denied: wrong password, or no such user): check "
                f"{_password_variable(settings, user['user'] if user else None)}; {STACK_UP} creates the "
                "platform's users and their passwords")
    if code == DB_ACCESS_DENIED:
        database = re.search(r"to database '(?P<db>[^']*)'", text)
        target = f"database '{database['db']}'" if database else "that database"
        return (f"{where}: {who} may not use {target} (access denied): check SOLAR_MYSQL_DATABASE, or grant "
                f"the user rights on it ({STACK_UP} does for the configured database)")
    if code in (TABLE_ACCESS_DENIED, COLUMN_ACCESS_DENIED, ROUTINE_ACCESS_DENIED):
        command = re.match(r"\s*(?P<command>[\w ]+?) command denied", text)
        target = re.search(r" for (?P<target>(?:table|column|routine) .+)$", text)
        privilege = f"the {command['command'].upper()} privilege" if command else "a privilege"
        on = f" on {target['target']}" if target else ""
        return (f"{where}: {who} lacks {privilege}{on}; {STACK_UP} grants each platform user its rights, or "
                "run this as a user that has them")
    if code == PRIVILEGE_NEEDED:
        return f"{where}: {who} lacks a privilege: {text}"
    if code == BAD_DATABASE:
        database = re.search(r"'(?P<db>[^']*)'", text)
        name = f"'{database['db']}'" if database else "the configured database"
        return f"{where} has no database {name}: check SOLAR_MYSQL_DATABASE ({STACK_UP} creates the configured one)"
    if code == NO_SUCH_TABLE:
        return f"{where}: {text}: the schema is missing or not migrated; run `solar-platform db migrate`"
    if code in CANNOT_CONNECT:
        reason = re.search(r"\(\[Errno -?\d+\] (?P<reason>[^)]*)\)|\((?P<other>[^()]*)\)\s*$", text)
        why = (reason["reason"] or reason["other"]).lower() if reason else "unreachable"
        return (f"cannot connect to {where} ({why}): is it running? Start the local stack with {STACK_UP}, "
                "or check SOLAR_MYSQL_HOST and SOLAR_MYSQL_PORT")
    if code == UNKNOWN_HOST:
        return f"cannot connect to {where}: {text}; check SOLAR_MYSQL_HOST"
    if code in CONNECTION_LOST:
        return f"lost the connection to {where} ({text}): was it stopped or restarted? Try again"
    if code == HOST_NOT_ALLOWED:
        return f"{where}: {text}: the platform's users connect from 127.0.0.1 ({STACK_UP} creates them)"
    if code == TOO_MANY_CONNECTIONS:
        return f"{where}: too many connections; stop some clients or raise max_connections"
    # Any other operational error is about the server, not the code; a programming error is a bug.
    if isinstance(error, pymysql.err.OperationalError | pymysql.err.InterfaceError | pymysql.err.InternalError):
        return f"{where}: error {code}: {text}" if code else f"{where}: {text or type(error).__name__}"
    return None


def _code_and_text(error: pymysql.err.MySQLError) -> tuple[int | None, str]:
    args = error.args
    if args and isinstance(args[0], int):
        return args[0], str(args[1]) if len(args) > 1 else ""
    return None, " ".join(str(arg) for arg in args)


def _mysql_address(settings: Settings | None, text: str) -> str | None:
    if settings is not None:
        return f"{settings.mysql_host}:{settings.mysql_port}"
    host = re.search(r"server on '(?P<host>[^']*)'", text)
    return host["host"] if host else None


def _password_variable(settings: Settings | None, user: str | None) -> str:
    """The variable that holds `user`'s password, when it is one of the platform's users."""
    if settings is not None and user is not None:
        for role in _MYSQL_ROLES:
            if getattr(settings, f"mysql_{role}_user", None) == user:
                return f"SOLAR_MYSQL_{role.upper()}_PASSWORD"
    return "the user name and password"


# ---------------------------------------------------------------- Kafka
def _kafka_message(error: kafka_errors.KafkaError, settings: Settings | None) -> str:
    if isinstance(error, kafka_clients.KafkaLoginRefused):
        return str(error)  # written for the user: who was refused, by which broker, which variable to check
    where = f"Kafka at {_kafka_bootstrap(settings, str(error))}"
    detail = f"{type(error).__name__}: {_kafka_text(error)}".rstrip(": ")
    if isinstance(error, kafka_clients.UNREACHABLE_ERRORS):
        return (f"cannot reach {where} ({detail}): is it running? Start the local stack with {STACK_UP}, "
                "or check SOLAR_KAFKA_BOOTSTRAP")
    if isinstance(error, _KAFKA_LOGIN):
        return (f"{where} refused the login ({detail}): check the part's SOLAR_KAFKA_*_USER and "
                f"SOLAR_KAFKA_*_PASSWORD ({STACK_UP} creates the platform's Kafka users)")
    if isinstance(error, kafka_errors.AuthorizationError):
        return (f"{where}: the Kafka user is not allowed to do this ({detail}); {STACK_UP} grants each "
                "platform user its ACLs on the configured topic")
    return f"{where}: {detail}"


def _kafka_text(error: kafka_errors.KafkaError) -> str:
    """The error's own words, without kafka-python's `[Error N] Name: ` prefix."""
    return " ".join(str(arg) for arg in error.args)


def _kafka_bootstrap(settings: Settings | None, text: str) -> str:
    said = re.search(r"bootstrap from (?P<servers>\S+)", text)
    if said:  # what the client was really given (a --bootstrap option beats the settings)
        return said["servers"]
    return settings.kafka_bootstrap if settings is not None else "the configured brokers"
