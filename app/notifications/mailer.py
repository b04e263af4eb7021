"""Where e-mails go: an SMTP server (aiosmtplib) or, by default, ``.eml`` files in a folder."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.settings import Settings


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """``smtp://[user:password@]host[:port][?starttls=true]`` or ``smtps://`` for implicit TLS."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("TOLLGATE_SMTP_URL must look like smtp://user:pass@host:port")
        query = parse_qs(parts.query)
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = query.get("starttls", ["false"])[0].lower() == "true"
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )


class DirectoryMailer:
    """Development default: each message becomes ``<folder>/<message id>.eml``, for any mail client."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: EmailMessage) -> None:
        name = message["Message-ID"].strip("<>").replace("@", "_") + ".eml"
        await asyncio.to_thread(self._write, self.folder / name, message.as_bytes())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)  # atomic: a reader never sees half a message


def mailer_from_settings(settings: Settings) -> Mailer:
    return SmtpMailer(settings.smtp_url) if settings.smtp_url else DirectoryMailer(settings.mail_dir)
