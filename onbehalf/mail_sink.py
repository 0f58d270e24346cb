"""The development mail sink: an SMTP server (aiosmtpd) on loopback that stores every message it
receives as an .eml file in a folder, instead of delivering it. `make run` and the test stack
start it and point identity's SMTP_URL at it; `onbehalf mail list|show` reads the folder.

A message is stored under its Message-ID, so a mail the relay sent twice (a crash between the
server's acceptance and the relay's commit) is stored once.

    python -m onbehalf.mail_sink --dir data/mail --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import signal
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


def message_file_name(content: bytes) -> str:
    """`<received ns>-<hash of the Message-ID>.eml`: sorted by name is sorted by arrival."""
    parsed = message_from_bytes(content, policy=policy.default)
    key = str(parsed.get("Message-ID") or "") or hashlib.sha256(content).hexdigest()
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class FolderHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(envelope.content, bytes):
            content = envelope.content
        key = message_file_name(content)
        if any(self.folder.glob(f"*-{key}.eml")):
            return "250 Message accepted (already stored)"
        temporary = self.folder / f".{key}.tmp"
        temporary.write_bytes(content)
        # Renamed into place: a reader never sees half a message.
        os.replace(temporary, self.folder / f"{time.time_ns()}-{key}.eml")
        return "250 Message accepted for delivery"


def stored_messages(folder: Path) -> list[Path]:
    """The sink's messages, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), key=lambda path: path.name)


def read_message(path: Path) -> EmailMessage:
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def summary(path: Path) -> dict[str, Any]:
    """What `onbehalf mail list` and the tests need of a stored message."""
    message = read_message(path)
    body = message.get_body(preferencelist=("plain",))
    return {
        "id": path.stem.split("-", 1)[1],
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "date": str(message.get("Date", "")),
        "kind": str(message.get("X-Onbehalf-Kind", "")),
        "body": body.get_content() if body is not None else "",
    }


def find_links(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


async def serve(folder: Path, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = FolderHandler(folder)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="onbehalf-mail-sink"), host=host, port=port
    )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
