"""Vendor export formats (QuickBooks, Xero, SAP, Stripe, Zoho, FreshBooks, NetSuite).

:func:`dashboard.ingest.formats.detect.parse_known_format` recognises a file from its first
lines and returns a :class:`~dashboard.ingest.formats.base.ParsedReport`, or None for a file
that is not one of these layouts (the canonical path then reads it as a plain table).
"""

from __future__ import annotations

from dashboard.ingest.formats.base import ParsedReport
from dashboard.ingest.formats.detect import FORMATS, detect_format, parse_known_format

__all__ = ["FORMATS", "ParsedReport", "detect_format", "parse_known_format"]
