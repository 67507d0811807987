"""The local stack's MariaDB: its program, its data directory, root over a private socket.

Debian's `mariadb-server` does not start by itself: the data directory is made once with
`mariadb-install-db`, then `mariadbd` runs under supervisord on loopback. Root logs in only over
the unix socket; the platform's users and grants are `storage.users`'.
"""

from __future__ import annotations

import os
from pathlib import Path

import pymysql

from solar_platform.runtime.host import find_program
from solar_platform.runtime.processes import run_or_raise
from solar_platform.settings import Settings
from solar_platform.stack.supervisor import Program

PROGRAM = "mariadb"
_INSTALL_HINT = "Install Debian's MariaDB server: apt-get install mariadb-server"


def data_dir(settings: Settings) -> Path:
    return settings.home_dir / "mariadb" / "data"


def tmp_dir(settings: Settings) -> Path:
    """MariaDB's on-disk temporary tables: inside the stack, where no /tmp cleaner removes them mid-query."""
    return settings.home_dir / "mariadb" / "tmp"


def mysql_socket(settings: Settings) -> Path:
    return settings.home_dir / "mariadb" / "mariadb.sock"


def server_command(datadir: Path, socket: Path, port: int, pid_file: Path, *, buffer_pool: str = "4G",
                   redo_log: str = "512M", tmpdir: Path | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """`mariadbd` on loopback with the platform's options (the stack's server, or a test's own)."""
    mariadbd = find_program("mariadbd", f"{_INSTALL_HINT} (it need not run as a service).")
    command = [
        mariadbd,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={socket}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--user=root" if os.geteuid() == 0 else "",
        "--default-time-zone=+00:00",
        f"--innodb-buffer-pool-size={buffer_pool}",
        f"--innodb-log-file-size={redo_log}",
        "--innodb-flush-log-at-trx-commit=2",
        "--max-connections=600",
        "--local-infile=1",
        "--skip-name-resolve",
        # Its own temporary directory: a shared /tmp may be cleaned under a long query's temp table.
        f"--tmpdir={tmpdir}" if tmpdir else "",
        f"--pid-file={pid_file}",
        *extra,
    ]
    return [arg for arg in command if arg]


def program(settings: Settings) -> Program:
    # 4 GiB of the 24: the hot day partitions, the 15-min buckets and the latest rows stay in
    # memory at 50M readings; a larger redo log spaces out checkpoint flushes under the stream's
    # steady upserts.
    command = server_command(data_dir(settings), mysql_socket(settings), settings.mysql_port,
                             settings.home_dir / "mariadb" / "mariadbd.pid", buffer_pool="4G", redo_log="512M",
                             tmpdir=tmp_dir(settings))
    return Program(PROGRAM, command, priority=10, port=settings.mysql_port)


def ensure_data_dir(settings: Settings) -> None:
    """Create the system tables once (root authenticates by password, not by OS user)."""
    tmp_dir(settings).mkdir(parents=True, exist_ok=True)
    install_data_dir(data_dir(settings))


def install_data_dir(datadir: Path, *extra: str) -> None:
    """`mariadb-install-db` into `datadir` unless it holds the system tables already."""
    if (datadir / "mysql").exists():
        return
    install = find_program("mariadb-install-db", f"{_INSTALL_HINT}.")
    datadir.mkdir(parents=True, exist_ok=True)
    args = [
        install,
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        *extra,
    ]
    if os.geteuid() == 0:
        args.append("--user=root")
    run_or_raise(args, "mariadb-install-db")


def admin_connection(settings: Settings, database: str | None = None, *,
                     socket: Path | None = None) -> pymysql.Connection:
    """root over the stack's private unix socket (root has no TCP access), or another server's `socket`."""
    from solar_platform.storage.db import UTC_SESSION

    return pymysql.connect(
        unix_socket=str(socket or mysql_socket(settings)),
        user="root",
        database=database,
        autocommit=True,
        init_command=UTC_SESSION,
    )


def mysql_ready(settings: Settings) -> bool:
    try:
        admin_connection(settings).close()
        return True
    except pymysql.Error:
        return False


def provision_database(settings: Settings, database: str | None = None, *, socket: Path | None = None) -> None:
    """Create the database and the platform's users for it, as root (idempotent; storage/users.py);
    on the stack's server, or the one listening on `socket`."""
    from solar_platform.storage import users

    with admin_connection(settings, socket=socket) as conn, conn.cursor() as cur:
        users.execute_statements(cur, users.provision_statements(settings, database or settings.mysql_database,
                                                                 "127.0.0.1"))


def drop_database(settings: Settings, database: str) -> None:
    """Drop a database and every grant on it, as root (storage/users.py)."""
    from solar_platform.storage import users

    with admin_connection(settings) as conn, conn.cursor() as cur:
        users.execute_statements(cur, users.drop_database_statements(database))
