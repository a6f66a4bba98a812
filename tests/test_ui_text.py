"""Values from the data shown in Markdown read as written: no link, image, emphasis or directive."""

from __future__ import annotations

import pytest

from dashboard.ui import WORD_JOINER, md

J = WORD_JOINER


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Acme Ltd", "Acme Ltd"),
        ("Smith & Sons, 1,234.50 (net)", r"Smith \& Sons, 1,234.50 \(net\)"),
        ("Acme [pay here](http://evil.example/pay)", rf"Acme \[pay here\]\(http{J}\://evil.example/pay\)"),
        ("![t](https://evil.example/p.png)", rf"\!\[t\]\(https{J}\://evil.example/p.png\)"),
        ("see www.evil.example", f"see www{J}.evil.example"),
        ("ap@x.example", rf"ap\@{J}x.example"),
        (
            ":red[alarm] :smile: $x$ *bold* _it_ `code` <b> | ~",
            r"\:red\[alarm\] \:smile\: \$x\$ \*bold\* \_it\_ \`code\` \<b\> \| \~",
        ),
        ("# Heading", r"\# Heading"),
        ("- item", r"\- item"),
        ("1. first", r"1\. first"),
        ("12.5 days", "12.5 days"),
        ("line one\r\n# two", "line one # two"),
    ],
)
def test_md_escapes_what_markdown_would_act_on(value: str, shown: str) -> None:
    assert md(value) == shown


def test_md_can_keep_line_breaks_as_markdown_breaks() -> None:
    assert md("2 problem(s):\n- rule A overlaps B", keep_lines=True) == "2 problem\\(s\\)\\:  \n\\- rule A overlaps B"
