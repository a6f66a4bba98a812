"""Collection messages: Jinja2 templates -> subject, plain text, HTML, and ``.eml`` drafts.

Templates live in ``dashboard/templates``: one ``<template_id>.j2`` per action that defines
the blocks ``subject``, ``opening`` and ``closing`` (and may override ``greeting``,
``payment``, ``signature``) for each tone (friendly, neutral, firm), and two layouts that
place them around the invoice table: ``_layout.txt.j2`` and ``_layout.html.j2``.

Rendering is sandboxed (templates cannot reach Python internals) and strict: a merge field the
caller did not provide fails loudly with the template's name and the field's name, instead of
sending "Dear ," to a customer. HTML is auto-escaped (a customer called ``<b>Acme</b>`` stays
text).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jinja2

from dashboard.errors import MessageTemplateError
from dashboard.sandbox import LimitedSandbox, TemplateLimitError, render_budget

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LAYOUTS = {"text": "_layout.txt.j2", "html": "_layout.html.j2"}
DEFAULT_COMPANY_NAME = "Recoup Demo Ltd"
DEFAULT_SENDER = "Accounts Receivable"
DEFAULT_FROM_ADDRESS = "ar@example.com"
# {customer_id} and {invoice_ids} are filled in; point this at your payment portal.
DEFAULT_PAYMENT_LINK = "https://pay.example.com/?customer={customer_id}"
MAX_TEMPLATE_CHARS = 100_000

# Every merge field a template may use, with what it holds (shown on the Strategy page).
MERGE_FIELDS: dict[str, str] = {
    "customer_name": "customer's name",
    "customer_id": "customer account number",
    "invoices": "list of invoices: invoice_id, invoice_date, due_date, open_amount, days_past_due",
    "total_open": "sum of the open amounts listed",
    "currency": "currency of the amounts",
    "oldest_due_date": "earliest due date among the invoices",
    "max_days_past_due": "days past due of the oldest invoice",
    "payment_link": "link to pay online",
    "sender_name": "collector signing the message",
    "company_name": "your company's name",
    "tone": "friendly, neutral or firm",
}


def _money(value: Any, currency: str | None = None) -> str:
    text = f"{float(value):,.2f}"
    return f"{text} {currency}" if currency else text


def _environment(*, html: bool, loader: jinja2.BaseLoader | None = None) -> LimitedSandbox:
    env = LimitedSandbox(
        loader=loader or jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = _money
    return env


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)


def available_templates(directory: Path = TEMPLATE_DIR) -> list[str]:
    """Template ids (file stems) a policy rule may name; layouts (``_*``) are not templates."""
    return sorted(p.name.removesuffix(".j2") for p in directory.glob("*.j2") if not p.name.startswith("_"))


@dataclass(frozen=True)
class Message:
    """One rendered message for one customer (all of its grouped invoices)."""

    template_id: str
    tone: str
    customer_id: str
    to: str | None
    subject: str
    text: str
    html: str
    notes: tuple[str, ...] = ()  # what a person should know before sending (e.g. an email left out)


# Control characters (CR and LF above all) in a header value would start a new header:
# "ap@x.example\r\nBcc: evil@x.example" is an injected Bcc, and the email library refuses it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_recipient(value: object) -> tuple[str | None, str | None]:
    """``(address, note)``: the address to put in the ``To`` header, or ``None`` and a note
    saying why it was left out (it holds a line break or another control character)."""
    if value is None:
        return None, None
    text = str(value).strip()
    if not text:
        return None, None
    if _CONTROL.search(text):
        note = (
            f"The customer's email {text[:120]!r} contains a line break or another control character, so "
            "this draft has no recipient: correct the email in the customers file."
        )
        return None, note
    return text, None


def _field_from_error(exc: jinja2.UndefinedError) -> str:
    match = re.search(r"'([^']+)' is undefined", str(exc)) or re.search(r"has no attribute '([^']+)'", str(exc))
    return match.group(1) if match else str(exc)


def _render(env: jinja2.Environment, template_id: str, context: Mapping[str, Any], layout: str) -> tuple[str, str]:
    try:
        template = env.get_template(f"{template_id}.j2")
    except jinja2.TemplateNotFound as exc:
        msg = f"There is no message template {template_id!r}. Known templates: {', '.join(available_templates())}."
        raise MessageTemplateError(msg) from exc
    except jinja2.TemplateSyntaxError as exc:
        msg = f"Message template {template_id!r} has a syntax error on line {exc.lineno}: {exc.message}"
        raise MessageTemplateError(msg) from exc
    except (RecursionError, MemoryError) as exc:  # a template nested thousands of levels deep
        msg = f"Message template {template_id!r} cannot be read: it is nested too deeply ({type(exc).__name__})."
        raise MessageTemplateError(msg) from None
    variables = {**context, "layout": layout}
    try:
        with render_budget():
            body = template.render(variables)
            subject_block = template.blocks.get("subject")
            subject = "".join(subject_block(template.new_context(variables))) if subject_block else ""
    except TemplateLimitError as exc:
        msg = f"Message template {template_id!r} was stopped: it {exc}. Make it simpler."
        raise MessageTemplateError(msg) from None
    except jinja2.UndefinedError as exc:
        field = _field_from_error(exc)
        msg = (
            f"Message template {template_id!r} needs the merge field {field!r}, which was not provided. "
            f"Available fields: {', '.join(sorted(context))}."
        )
        raise MessageTemplateError(msg) from exc
    except jinja2.TemplateError as exc:
        msg = f"Message template {template_id!r} could not be rendered: {exc}"
        raise MessageTemplateError(msg) from exc
    except Exception as exc:  # whatever a template's own code raises is the template's fault
        detail = str(exc)[:200] if not isinstance(exc, RecursionError) else "it calls itself too deeply"
        msg = f"Message template {template_id!r} could not be rendered ({type(exc).__name__}: {detail})."
        raise MessageTemplateError(msg) from None
    return " ".join(subject.split()), body.strip() + "\n"


def render_message(template_id: str, *, tone: str, context: Mapping[str, Any], to: str | None = None) -> Message:
    """Render ``template_id`` in ``tone`` with the merge fields in ``context``.

    Raises :class:`MessageTemplateError` naming the template (and the missing field) when the
    template is unknown, broken, or uses a field ``context`` lacks.
    """
    if tone not in ("friendly", "neutral", "firm"):
        msg = f"Tone {tone!r} is not one of friendly, neutral, firm (template {template_id!r})."
        raise MessageTemplateError(msg)
    values = {**context, "tone": tone}
    subject, text = _render(_TEXT_ENV, template_id, values, LAYOUTS["text"])
    _, html = _render(_HTML_ENV, template_id, values, LAYOUTS["html"])
    address, note = clean_recipient(to)
    return Message(
        template_id=template_id,
        tone=tone,
        customer_id=str(values.get("customer_id", "")),
        to=address,
        subject=subject,
        text=text,
        html=html,
        notes=(note,) if note else (),
    )


def check_template_source(name: str, source: str, *, context: Mapping[str, Any] | None = None) -> None:
    """Refuse a new or edited template (by ``name``) that does not render with the merge fields.

    Renders it in both layouts and all tones against :func:`sample_context` (or ``context``);
    raises :class:`MessageTemplateError` quoting ``name`` and the offending field.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        msg = f"Message template {name!r} is {len(source):,} characters long; at most {MAX_TEMPLATE_CHARS:,} are read."
        raise MessageTemplateError(msg)
    loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({f"{name}.j2": source}), jinja2.FileSystemLoader(str(TEMPLATE_DIR))]
    )
    values = dict(context or sample_context())
    for html in (False, True):
        env = _environment(html=html, loader=loader)
        for tone in ("friendly", "neutral", "firm"):
            _render(env, name, {**values, "tone": tone}, LAYOUTS["html" if html else "text"])


def sample_context() -> dict[str, Any]:
    """A complete set of merge fields for previews and template checks."""
    invoices = [
        {
            "invoice_id": "INV-1001",
            "invoice_date": date(2025, 4, 1),
            "due_date": date(2025, 5, 1),
            "open_amount": 1250.0,
            "days_past_due": 30,
        },
        {
            "invoice_id": "INV-1002",
            "invoice_date": date(2025, 4, 15),
            "due_date": date(2025, 5, 15),
            "open_amount": 480.5,
            "days_past_due": 16,
        },
    ]
    return build_context(
        customer_id="C0001",
        customer_name="Acme Trading Ltd",
        invoices=invoices,
        currency="EUR",
    )


def build_context(
    *,
    customer_id: str,
    customer_name: str,
    invoices: Iterable[Mapping[str, Any]],
    currency: str | None,
    sender_name: str = DEFAULT_SENDER,
    company_name: str = DEFAULT_COMPANY_NAME,
    payment_link: str = DEFAULT_PAYMENT_LINK,
) -> dict[str, Any]:
    """The merge fields for one customer's grouped invoices (see :data:`MERGE_FIELDS`)."""
    rows = [dict(invoice) for invoice in invoices]
    due_dates = [row["due_date"] for row in rows if row.get("due_date") is not None]
    return {
        "customer_id": customer_id,
        "customer_name": customer_name,
        "invoices": rows,
        "total_open": round(sum(float(row["open_amount"]) for row in rows), 2),
        "currency": currency or "",
        "oldest_due_date": min(due_dates) if due_dates else None,
        "max_days_past_due": max((int(row.get("days_past_due") or 0) for row in rows), default=0),
        "payment_link": payment_link.format(
            customer_id=customer_id, invoice_ids=",".join(str(row["invoice_id"]) for row in rows)
        ),
        "sender_name": sender_name,
        "company_name": company_name,
    }


def message_for_line(
    line: Mapping[str, Any],
    *,
    company_name: str = DEFAULT_COMPANY_NAME,
    payment_link: str = DEFAULT_PAYMENT_LINK,
) -> Message:
    """Render the message for one worklist line (a row of ``WorklistResult.lines``)."""
    context = build_context(
        customer_id=line["customer_id"],
        customer_name=line.get("customer_name") or line["customer_id"],
        invoices=line["invoices"],
        currency=line.get("currency"),
        sender_name=line.get("collector") or DEFAULT_SENDER,
        company_name=company_name,
        payment_link=payment_link,
    )
    return render_message(
        line["template_id"], tone=line.get("tone") or "neutral", context=context, to=line.get("email")
    )


def to_eml(message: Message, *, sender: str = DEFAULT_FROM_ADDRESS, sent_on: date | None = None) -> bytes:
    """The message as an RFC 5322 ``.eml`` draft (text + HTML alternative, marked unsent)."""
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    address, _ = clean_recipient(message.to)
    if address:
        try:
            email["To"] = address
        except (ValueError, TypeError, HeaderParseError):
            del email["To"]  # not an address the email library can write: the draft goes without one
    email["Subject"] = _CONTROL.sub(" ", message.subject)
    if sent_on is not None:
        email["Date"] = formatdate(float(date.toordinal(sent_on) - date(1970, 1, 1).toordinal()) * 86400)
    email["X-Unsent"] = "1"  # mail clients open it as a draft to review and send
    email["X-Recoup-Template"] = f"{message.template_id}/{message.tone}"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email.as_bytes()


def eml_zip(messages: Iterable[Message], *, sender: str = DEFAULT_FROM_ADDRESS) -> bytes:
    """A zip of ``.eml`` drafts, one per message, named by customer and template."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, message in enumerate(messages, start=1):
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", message.customer_id) or "customer"
            archive.writestr(f"{index:04d}_{safe}_{message.template_id}.eml", to_eml(message, sender=sender))
    return buffer.getvalue()
