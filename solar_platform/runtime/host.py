"""What the local stack needs from the machine, checked up front with a clear message each."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from functools import cache
from pathlib import Path


class SetupError(RuntimeError):
    """A problem the user can fix (missing Java, a port in use); printed without a traceback."""


_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find_program(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if not found:
        raise SetupError(f"`{name}` not found. {hint}")
    return found


def java_home() -> Path:
    """JAVA_HOME if set, else the JDK behind `java` on PATH; Java 17+ is required (Kafka 4, Spark 4)."""
    env_home = os.environ.get("JAVA_HOME")
    java = Path(env_home) / "bin" / "java" if env_home else None
    if java is None or not java.exists():
        on_path = shutil.which("java")
        if not on_path:
            raise SetupError("Java not found: install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)")
        java = Path(on_path).resolve()
    out = _java_version_output(java.resolve())
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < 17:
        raise SetupError(f"Java 17+ is required, found: {out.splitlines()[0] if out else java}")
    return java.resolve().parents[1]


@cache
def _java_version_output(java: Path) -> str:
    # One JVM start per binary and process: `stack up` asks for JAVA_HOME once per program it writes.
    return subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False).stderr


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_free_ports(wanted: dict[str, int]) -> None:
    taken = {name: port for name, port in wanted.items() if not port_is_free(port)}
    if taken:
        listing = ", ".join(f"{port} ({name})" for name, port in taken.items())
        raise SetupError(
            f"port(s) already in use by another process: {listing}. "
            "Stop that process or choose other ports (SOLAR_MYSQL_PORT, SOLAR_KAFKA_BROKER_PORTS, "
            "SOLAR_KAFKA_CONTROLLER_PORTS, SOLAR_DAGSTER_PORT, SOLAR_API_PORT)."
        )
