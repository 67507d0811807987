"""JVM jars for Kafka and Spark: resolved once from Maven Central with Maven, then used offline."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from solar_platform.runtime.host import SetupError, find_program
from solar_platform.settings import Settings

POM = Path(__file__).with_name("pom.xml")
Profile = Literal["kafka", "spark"]


def jar_dir(settings: Settings, profile: Profile) -> Path:
    return settings.home_dir / "jars" / profile


def ensure_jars(settings: Settings, profile: Profile) -> list[Path]:
    """The jars of one pom profile, copied into the stack's home; Maven runs only when the pom changed."""
    target = jar_dir(settings, profile)
    stamp = target / ".pom-sha256"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        mvn = find_program("mvn", "Install Maven (Debian: apt-get install maven) to fetch the Kafka and Spark jars.")
        staging = target.with_name(f"{profile}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                f"-P{profile}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SetupError(
                f"Maven could not resolve the {profile} jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        stamp.write_text(digest)
    return sorted(target.glob("*.jar"))
