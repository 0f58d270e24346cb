"""The wheel carries what an installed system needs beyond code: the policies (and their decision
tables), the migration templates and the console's pages; and an install finds its policies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from onbehalf.stack import PROJECT_ROOT

ROOT = Path(PROJECT_ROOT)
SOURCES = ["pyproject.toml", "README.md", "libs", "services", "onbehalf", "policies"]


def build_wheel(workdir: Path) -> Path:
    """`pip wheel` on a copy of the sources (a build leaves build/ and egg-info behind)."""
    source = workdir / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = workdir / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("onbehalf-*.whl")
    return wheel


def test_the_wheel_ships_policies_templates_and_pages_and_an_install_finds_its_policies(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        *ROOT.glob("policies/*.polar"),
        *ROOT.glob("policies/tests/*.yaml"),
        *ROOT.glob("services/*/migrations/script.py.mako"),
        *ROOT.glob("services/console/templates/*.html"),
        *ROOT.glob("services/console/static/*.css"),
    ]
    assert len(list(ROOT.glob("policies/*.polar"))) >= 1
    missing = [str(p.relative_to(ROOT)) for p in expected if str(p.relative_to(ROOT)) not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    top_level = {name.split("/")[0] for name in names if not name.startswith("onbehalf-")}
    assert top_level == {"onbehalf", "libs", "services", "policies"}, top_level

    # Installed (unpacked, first on the path): the policy directory is the installed one, and
    # it loads, the way a service loads it at start-up.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import libs.common.settings as s; from libs.common.authz import Authorizer;"
        "d = s.default_policy_dir(); print(s.__file__); print(d); print(Authorizer(d).revision)"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ONBEHALF_POLICY_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    module, policy_dir, revision = done.stdout.split()[-3:]
    assert Path(module).is_relative_to(site), module
    assert Path(policy_dir) == site / "policies"
    assert revision
