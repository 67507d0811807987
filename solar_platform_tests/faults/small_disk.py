"""A MariaDB of the test's own whose data directory lives on a small filesystem the test can fill.

The stack's MariaDB is shared by every test; this one is not. `small_disk_mariadb` mounts a
size-limited tmpfs, makes a data directory on it (`mariadb-install-db`, a 16 MiB redo log so the
disk stays small), starts `mariadbd` with the stack's options on a free loopback port, provisions
the platform's users and database as root over its own socket, migrates, and makes a Kafka topic on
the stack's brokers. Everything is undone afterwards: the server is stopped by the PID this process
started, the tmpfs unmounted, the topic dropped.

`SmallDisk.fill()` takes every free byte of that filesystem with one preallocated file, as another
program's logs would; `free()` deletes it.

MariaDB 10.11 may abort on a full disk (`[FATAL] InnoDB: Error (Out of disk space) in rollback`), so
the server runs under a small supervisor of the test's own, as the stack's supervisord and
compose's `restart:` run it: when it exits, it is started again a second later (`crashes` counts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_topic
from solar_platform.settings import Settings
from solar_platform.stack.mariadb import install_data_dir, provision_database, server_command
from solar_platform.storage.migrations import migrate

REDO_LOG = "16M"
BUFFER_POOL = "256M"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Supervised:
    """`command` kept running: started again a second after it exits, until `stop`."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.crashes: list[float] = []  # wall times the server was found dead
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mariadb-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            if self.process.poll() is not None:
                self.crashes.append(time.time())
                if not self._stopping.wait(1.0):
                    self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@dataclass
class SmallDisk:
    settings: Settings  # the test's database (on the small disk) and topic
    mount: Path
    data_dir: Path
    server: Supervised
    error_log: Path
    filler: Path | None = None

    def free_bytes(self) -> int:
        stats = os.statvfs(self.mount)
        return stats.f_bavail * stats.f_frsize

    def fill(self) -> int:
        """Take every free byte with one preallocated file; returns its size."""
        self.filler = self.mount / "filler"
        with self.filler.open("wb") as out:
            size = self.free_bytes()
            while size > 0:
                try:
                    os.posix_fallocate(out.fileno(), 0, size)
                    break
                except OSError:  # a few pages went to the server meanwhile
                    size -= 64 * 1024
        assert self.free_bytes() < 64 * 1024, f"{self.free_bytes()} bytes still free after filling"
        return size

    def free(self) -> None:
        assert self.filler is not None
        self.filler.unlink()
        self.filler = None

    @property
    def server_alive(self) -> bool:
        return self.server.running

    def error_log_tail(self, lines: int = 20) -> str:
        text = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(sock: Path, server: Supervised, error_log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            pymysql.connect(unix_socket=str(sock), user="root").close()
            return
        except pymysql.Error as error:
            if server.crashes or time.monotonic() > deadline:
                log = error_log.read_text(errors="replace") if error_log.exists() else ""
                raise AssertionError(f"the test's mariadbd did not start ({error}):\n{log}") from None
            time.sleep(0.2)


@contextlib.contextmanager
def small_disk_mariadb(base: Settings, name: str, size_mb: int, log_dir: Path) -> Iterator[SmallDisk]:
    """MariaDB on a `size_mb` tmpfs, with database and topic `name` (see the module docstring); its
    error log is copied to `log_dir` at the end."""
    work = Path(tempfile.mkdtemp(prefix="solar-disk-"))  # short: unix socket paths are limited
    mount, tmp = work / "disk", work / "tmp"
    mount.mkdir()
    tmp.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)], check=True)
    server: Supervised | None = None
    settings = base.model_copy(update={"mysql_port": _free_port(), "mysql_database": name, "topic": name})
    topic_made = False
    try:
        data_dir = mount / "data"
        install_data_dir(data_dir, f"--innodb-log-file-size={REDO_LOG}")
        sock, error_log = work / "mariadb.sock", work / "mariadb.err"
        command = server_command(data_dir, sock, settings.mysql_port, work / "mariadbd.pid", buffer_pool=BUFFER_POOL,
                                 redo_log=REDO_LOG, extra=(f"--tmpdir={tmp}", f"--log-error={error_log}"))
        server = Supervised(command)
        _wait_ready(sock, server, error_log)
        provision_database(settings, socket=sock)
        migrate(settings)
        ensure_topic(settings)
        topic_made = True
        yield SmallDisk(settings, mount, data_dir, server, error_log)
    finally:
        if server is not None:
            server.stop()
        if (work / "mariadb.err").exists():
            shutil.copy(work / "mariadb.err", log_dir / "mariadb.err")
        if topic_made:
            with contextlib.suppress(Exception):
                drop_topic(settings, name)
        shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)
        subprocess.run(["umount", str(mount)], check=False)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(work, ignore_errors=True)
