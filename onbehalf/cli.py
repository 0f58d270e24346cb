"""The `onbehalf` operator command: run the system, test and explain policies, read the audit log."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from pathlib import Path

import typer
from rich.console import Console

from onbehalf.audit_cli import audit_app
from onbehalf.db_cli import db_app
from onbehalf.deadletters_cli import deadletters_app
from onbehalf.events_cli import events_app
from onbehalf.keys_cli import keys_app
from onbehalf.mail_cli import mail_app
from onbehalf.nats_cli import nats_app
from onbehalf.nats_setup import NATS_URL_FILE, stable_nats_port
from onbehalf.openapi_cli import openapi_app
from onbehalf.policy_cli import policy_app
from onbehalf.stack import CONSOLE, DEFAULT_PORTS, SERVICES, StackError, port_is_free, start_stack
from onbehalf.supervise import Supervisor

app = typer.Typer(no_args_is_help=True, help=__doc__, add_completion=False)
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(keys_app, name="keys")
app.add_typer(nats_app, name="nats")
app.add_typer(db_app, name="db")
app.add_typer(openapi_app, name="openapi")
app.add_typer(events_app, name="events")
app.add_typer(mail_app, name="mail")
console = Console()


@app.command()
def run(
    data_dir: Path = typer.Option(Path("data"), help="Databases, NATS storage and logs"),
    demo: bool = typer.Option(True, help="Load demo data on first start"),
) -> None:
    """Start NATS, the five services on SQLite and demo data; keep them running (a process that
    dies is restarted); Ctrl-C stops everything."""
    from onbehalf.demo import DEMO_PASSWORD, load_demo_data

    ports = {name: _setting_port(name, port) for name, port in DEFAULT_PORTS.items()}
    busy = [f"{name}:{port}" for name, port in ports.items() if not port_is_free(port)]
    if busy:
        console.print(f"[red]ports in use: {', '.join(busy)} — is onbehalf already running?[/]")
        console.print(
            "(set ONBEHALF_<SERVICE>_PORT, e.g. ONBEHALF_IDENTITY_PORT=9001, to move one)"
        )
        raise typer.Exit(1)
    loading, loaded = data_dir / ".demo-loading", data_dir / ".demo-loaded"
    if loading.exists() and not loaded.exists():
        # The first start stopped half-way through the demo data: nothing else happened in
        # this folder yet, so start clean rather than trip over half of the demo.
        console.print(f"[yellow]the first start in {data_dir} was interrupted; starting clean[/]")
        shutil.rmtree(data_dir)
    admin_email = os.environ.get("ONBEHALF_ADMIN_EMAIL", "admin@seller.example")
    secret_file = data_dir / "admin-password"
    data_dir.mkdir(parents=True, exist_ok=True)
    if "ONBEHALF_ADMIN_PASSWORD" in os.environ:
        admin_password = os.environ["ONBEHALF_ADMIN_PASSWORD"]
    elif secret_file.exists():
        admin_password = secret_file.read_text().strip()
    else:
        # A fresh random password per data folder: no well-known default admin password.
        admin_password = secrets.token_urlsafe(12)
        secret_file.write_text(admin_password + "\n")
        secret_file.chmod(0o600)

    console.print("starting NATS, the five services and the console…")
    try:
        stack = start_stack(
            data_dir.resolve(),
            admin_email=admin_email,
            admin_password=admin_password,
            nats_url=os.environ.get("NATS_URL"),
            nats_port=None if os.environ.get("NATS_URL") else stable_nats_port(data_dir),
            ports=ports,
            extra_env={"ONBEHALF_LOG_LEVEL": os.environ.get("ONBEHALF_LOG_LEVEL", "info")},
        )
    except StackError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        console.print("interrupted; everything started so far is stopped.")
        raise typer.Exit(130) from None
    # Every CLI command finds this system's NATS here (`onbehalf audit tail`, `deadletters`...).
    (data_dir / NATS_URL_FILE).write_text(stack.nats_url + "\n")

    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        urls = {name: stack.url(name) for name in SERVICES}
        if demo and not loaded.exists():
            loading.touch()
            data = load_demo_data(urls, admin_email=admin_email, admin_password=admin_password)
            loaded.write_text("\n".join(f"{k}={v}" for k, v in data.customers.items()) + "\n")
            loading.unlink()
        customers = (
            dict(line.split("=", 1) for line in loaded.read_text().splitlines() if "=" in line)
            if loaded.exists()
            else {}
        )
        _print_welcome(
            stack.nats_url,
            urls,
            admin_email,
            admin_password,
            customers,
            DEMO_PASSWORD,
            console_url=stack.url(CONSOLE),
        )
        for group in stack.colocated:
            console.print(f"\n{' and '.join(group)} share one process (ONBEHALF_COLOCATE)")
        supervisor = Supervisor(stack, say=lambda line: console.print(f"[yellow]{line}[/]"))
        while not stopping:
            supervisor.check()
            time.sleep(0.5)  # the supervision period
    finally:
        console.print("stopping…")
        stack.stop()
        console.print("stopped.")


@app.command()
def serve(
    service: str = typer.Argument(..., help="identity, catalog, cart, orders, audit or console"),
) -> None:
    """Run one service in this process, listening on ONBEHALF_HOST:ONBEHALF_PORT (default
    127.0.0.1 and the service's own port, 8000-8005): what a container runs."""
    from onbehalf import server

    if service not in DEFAULT_PORTS:
        raise typer.BadParameter(f"no service {service!r}; one of {', '.join(DEFAULT_PORTS)}")
    host = os.environ.get("ONBEHALF_HOST") or "127.0.0.1"
    port = int(os.environ.get("ONBEHALF_PORT") or DEFAULT_PORTS[service])
    raise typer.Exit(server.run(f"services.{service}.app:create_app", host=host, port=port))


def _setting_port(name: str, default: int) -> int:
    value = os.environ.get(f"ONBEHALF_{name.upper()}_PORT")
    return int(value) if value else default


def _print_welcome(
    nats_url: str,
    urls: dict[str, str],
    admin_email: str,
    admin_password: str,
    customers: dict[str, str],
    demo_password: str,
    *,
    console_url: str | None = None,
) -> None:
    console.rule("onbehalf is running")
    if console_url:
        console.print(f"[bold]open {console_url} in a browser[/] (the console; sign in as below)\n")
    console.print(f"NATS      {nats_url}")
    for name, url in urls.items():
        console.print(f"{name:<9} {url}   (OpenAPI: {url}/docs)")
    console.print(f"\nplatform admin: {admin_email} / {admin_password}")
    if customers:
        console.print(f"demo logins (password [bold]{demo_password}[/]):")
        for email in [
            "rep@seller.example      sales rep, caretaker of Acme and Borealis (full acting)",
            "csr@seller.example      customer service, caretaker of Acme (view-only acting)",
            "reviewer@seller.example security reviewer (audit log)",
            "buyer@acme.example      buyer at Acme",
            "admin@acme.example      customer admin at Acme (its users, remote assistance)",
            "buyer@borealis.example  buyer at Borealis",
        ]:
            console.print(f"  {email}", soft_wrap=True)
        acme = customers.get("Acme Industrial GmbH", "<customer org id>")
        identity, catalog = urls["identity"], urls["catalog"]
        console.print("\nTry it — log in as the rep, act as Acme, see Acme's prices:")
        take_token = "python3 -c 'import json,sys;print(json.load(sys.stdin)[\"access_token\"])'"
        login_body = f'{{"email":"rep@seller.example","password":"{demo_password}"}}'
        acting_body = f'{{"customer_org_id":"{acme}","mode":"full"}}'
        json_header = "-H 'content-type: application/json'"
        lines = [
            f"TOKEN=$(curl -s {identity}/v1/auth/token {json_header} \\",
            f"    -d '{login_body}' | {take_token})",
            f'ACTING=$(curl -s {identity}/v1/acting-as -H "authorization: Bearer $TOKEN" \\',
            f"    {json_header} -d '{acting_body}' | {take_token})",
            f'curl -s {catalog}/v1/products -H "authorization: Bearer $ACTING"',
        ]
        for line in lines:
            console.print("  " + line, soft_wrap=True, highlight=False, markup=False)
    console.print("\nCtrl-C stops everything.")


def main() -> None:
    app()
