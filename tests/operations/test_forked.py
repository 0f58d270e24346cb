"""The fork server the launcher starts services from: each child is what `python -m` would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)

from onbehalf.forked import PROJECT_ROOT, ForkServer, fork_server
from tests.support import wait_until


def _module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_a_child_has_exactly_its_environment_its_folder_its_log_and_its_exit_code(
    tmp_path: Path,
) -> None:
    _module(
        tmp_path,
        "probe_world",
        """
        import json, os, sys
        print(json.dumps({
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "argv": sys.argv[1:],
            "ours_loaded": "libs.common.settings" in sys.modules,
            "library_loaded": "sqlalchemy.orm" in sys.modules,
        }))
        print("to stderr", file=sys.stderr)
        sys.exit(7)
        """,
    )
    os.environ["ONBEHALF_PROBE_LAUNCHER_ONLY"] = "1"
    try:
        child = fork_server().start(
            "probe_world",
            ["--flag", "x"],
            env={"ONBEHALF_PROBE": "given"},
            cwd=tmp_path,
            log_path=tmp_path / "probe.log",
            title="probe",
        )
    finally:
        del os.environ["ONBEHALF_PROBE_LAUNCHER_ONLY"]
    assert child.wait(timeout=30) == 7
    assert child.returncode == 7 and child.poll() == 7
    first, second = (tmp_path / "probe.log").read_text().splitlines()
    seen = json.loads(first)
    assert seen["env"] == {"ONBEHALF_PROBE": "given"}  # nothing of the launcher's
    assert seen["cwd"] == str(tmp_path)
    assert seen["argv"] == ["--flag", "x"]
    # Libraries come imported from the server; our own code is imported by the child.
    assert seen["library_loaded"] is True
    assert seen["ours_loaded"] is False
    assert second == "to stderr"


def test_a_child_ends_through_the_interpreters_exit_and_a_killed_one_reports_its_signal(
    tmp_path: Path,
) -> None:
    _module(
        tmp_path,
        "probe_exit",
        """
        import atexit
        atexit.register(lambda: print("atexit ran", flush=True))
        """,
    )
    _module(tmp_path, "probe_sleeper", "import time\ntime.sleep(3600)\n")
    done = fork_server().start(
        "probe_exit", [], env={}, cwd=tmp_path, log_path=tmp_path / "exit.log", title="exit"
    )
    sleeper = fork_server().start(
        "probe_sleeper", [], env={}, cwd=tmp_path, log_path=tmp_path / "sleep.log", title="sleeper"
    )
    assert done.wait(timeout=30) == 0
    assert (tmp_path / "exit.log").read_text() == "atexit ran\n"
    assert sleeper.poll() is None
    with open(f"/proc/{sleeper.pid}/comm") as comm:
        assert comm.read().strip() == "sleeper"
    try:
        sleeper.wait(timeout=0.2)
    except subprocess.TimeoutExpired:
        pass
    else:
        raise AssertionError("a sleeping child reported an exit")
    sleeper.kill()
    assert sleeper.wait(timeout=30) == -signal.SIGKILL


def test_a_script_may_start_children_at_its_top_level_and_they_end_with_their_launcher(
    tmp_path: Path,
) -> None:
    # multiprocessing's fork server would import this script again in every child, and the
    # child would start another one; ours runs only the module it is asked to.
    _module(tmp_path, "probe_sleeper", "import time\ntime.sleep(3600)\n")
    script = tmp_path / "launcher.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            from onbehalf.forked import fork_server
            folder = Path({str(tmp_path)!r})
            child = fork_server().start("probe_sleeper", [], env={{}}, cwd=folder,
                                 log_path=folder / "sleeper.log", title="sleeper")
            print(child.pid, flush=True)
            time.sleep(3600)
            """
        )
    )
    launcher = subprocess.Popen(
        [sys.executable, str(script)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert launcher.stdout is not None
        pid = int(launcher.stdout.readline())
        assert Path(f"/proc/{pid}").exists()
    finally:
        launcher.kill()
        launcher.wait(timeout=30)
    # The launcher's death closes the server's stdin; the server's death signals its children.
    wait_until(lambda: not _running(pid), timeout=30, what="the child ended with its launcher")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_when_the_fork_server_dies_its_children_end_and_are_seen_to(tmp_path: Path) -> None:
    # A server of the test's own: this test process's shared one serves its stacks.
    server = ForkServer()
    _module(tmp_path, "probe_sleeper", "import time\ntime.sleep(3600)\n")
    child = server.start(
        "probe_sleeper", [], env={}, cwd=tmp_path, log_path=tmp_path / "s.log", title="sleeper"
    )
    assert child.poll() is None
    os.kill(server.pid, signal.SIGKILL)
    # Nobody can report the child's exit now; its parent-death signal ends it, and a wait
    # without a timeout (as a supervisor may wait) sees that rather than waiting for a
    # message that never comes.
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(child.wait()), daemon=True)
    waiter.start()
    waiter.join(timeout=30)
    assert codes == [-signal.SIGKILL]
    assert not server.alive
