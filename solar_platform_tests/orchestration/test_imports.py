"""Dagster's code never imports the developer stack (`stack/`), which production does not install.

Two checks of one rule (docs/architecture.md): loading every module under `orchestration/` in a
fresh interpreter leaves no `solar_platform.stack` module loaded, and no file there names `stack`
in an import statement, at any level (a function-level import counts too). Process control is the
one place that may reach the stack: `runtime.process_control.process_control` imports the
supervisord implementation when, and only when, it is chosen.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
ORCHESTRATION = PROJECT_DIR / "solar_platform" / "orchestration"
STACK = "solar_platform.stack"

# Imports every orchestration module, then makes the `processes` resource the way a run does, for
# compose and for supervisord; prints which stack modules were loaded after each step.
_PROBE = """
import importlib, json, pkgutil, sys
import dagster as dg
import solar_platform.orchestration as orchestration

def stack_modules():
    return sorted(name for name in sys.modules if name.split(".")[:2] == ["solar_platform", "stack"])

names = [module.name for module in pkgutil.walk_packages(orchestration.__path__, "solar_platform.orchestration.")]
for name in names:
    importlib.import_module(name)
report = {"modules": names, "after_import": stack_modules()}

from solar_platform.orchestration.definitions import build_defs
from solar_platform.orchestration.resources import SolarSettingsResource

for manager in ("compose", "supervisord"):
    defs = build_defs(SolarSettingsResource(overrides={"process_manager": manager}))
    with dg.build_resources({"processes": defs.resources["processes"]}) as resources:
        report[manager] = [type(resources.processes).__module__, stack_modules()]
print(json.dumps(report))
"""


def test_loading_the_orchestration_code_loads_no_stack_module() -> None:
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", _PROBE], cwd=PROJECT_DIR, capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "solar_platform.orchestration.definitions" in report["modules"]
    assert len(report["modules"]) > 20  # every domain's assets, checks, jobs, schedules and sensors
    assert report["after_import"] == []
    # Under compose the platform's process control is compose's, and the stack stays unloaded...
    assert report["compose"] == ["solar_platform.runtime.process_control", []]
    # ...while the local stack's supervisord control is imported on use, only where it is chosen
    # (which also shows that this probe sees a stack module when one is loaded).
    module, loaded = report["supervisord"]
    assert module == "solar_platform.stack.process_control" and module in loaded


def stack_imports(source: str, module: str) -> list[str]:
    """The modules under `solar_platform.stack` that `source` (the text of `module`) imports, at any level."""
    package = module.rsplit(".", 1)[0]  # `a.b.c` -> `a.b`; `a.b.__init__` -> `a.b`
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from solar_platform import stack` imports the package itself.
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in targets if name == STACK or name.startswith(STACK + ".")]
    return found


def test_no_orchestration_file_imports_the_stack() -> None:
    files = sorted(ORCHESTRATION.rglob("*.py"))
    assert len(files) > 20
    offenders = {}
    for path in files:
        module = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts)
        if found := stack_imports(path.read_text(), module):
            offenders[str(path.relative_to(PROJECT_DIR))] = found
    assert offenders == {}


def test_the_static_check_sees_every_form_of_import() -> None:
    here = "solar_platform.orchestration.ingestion.assets"
    forms = {
        "import solar_platform.stack.supervisor": ["solar_platform.stack.supervisor"],
        "from solar_platform.stack.process_control import SupervisordProcessControl":
            ["solar_platform.stack.process_control"],
        "from solar_platform import stack": ["solar_platform.stack"],
        "def later():\n    from solar_platform.stack import lifecycle": ["solar_platform.stack"],
        "from ...stack import supervisor": ["solar_platform.stack"],
        "from solar_platform.runtime.process_control import RUNNING": [],
        "import solar_platform.stacked": [],
    }
    for source, expected in forms.items():
        assert stack_imports(source, here)[:1] == expected, source
