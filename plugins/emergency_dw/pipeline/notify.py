"""Tell a feed's owner that a batch failed: an e-mail when SMTP is configured, always a log line and a
record in ``$EDW_DATA_DIR/notifications/`` that the reports and engineers read."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import smtplib
from email.message import EmailMessage

from ..catalog import department, get_feed
from ..config import settings

log = logging.getLogger(__name__)


def notify_failure(feed_name: str, message: str, run_id: str | None = None) -> dict:
    feed = get_feed(feed_name)
    owner = department(feed.department)
    record = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "feed": feed.name,
        "department": owner.code,
        "owner": owner.owner_email or f"{owner.code}-data@example.invalid",
        "run_id": run_id,
        "message": message,
    }
    log.error("batch failed: feed %s (%s): %s", feed.name, owner.name, message)
    folder = settings().data_dir / "notifications"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{dt.date.today().isoformat()}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    host = os.environ.get("EDW_SMTP_HOST")
    if host and owner.owner_email:
        mail = EmailMessage()
        mail["Subject"] = f"[edw] {feed.name} batch failed"
        mail["From"] = os.environ.get("EDW_SMTP_FROM", "edw@localhost")
        mail["To"] = owner.owner_email
        mail.set_content(message)
        with smtplib.SMTP(host, int(os.environ.get("EDW_SMTP_PORT", "25")), timeout=10) as smtp:
            smtp.send_message(mail)
    return record
