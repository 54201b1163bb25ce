"""HTTP dates (RFC 9110 §5.6.7) for Last-Modified and Expires."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)
