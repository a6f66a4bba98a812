"""Property-based tests (Hypothesis) for the header parser: how people type a header must not matter,
and no list of headers, however odd, crashes matching or maps two file columns to one target."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.ingest.headers import ALIASES, match_headers, normalize_header

ALIAS_CASES = [(table, target, alias) for table, columns in ALIASES.items() for target, aliases in columns.items() for alias in aliases]
SEPARATORS = st.sampled_from([" ", "_", "-", ".", "  ", ""])


def _retype(alias: str, *, upper: bool, separator: str, pad: str) -> str:
    text = alias.upper() if upper else alias.lower()
    return pad + text.replace(" ", separator) + pad


@settings(max_examples=300)
@given(case=st.sampled_from(ALIAS_CASES), upper=st.booleans(), separator=SEPARATORS, pad=st.sampled_from(["", " ", "  "]))
def test_an_alias_is_matched_however_it_is_cased_spaced_or_punctuated(case, upper, separator, pad) -> None:
    table, target, alias = case
    header = _retype(alias, upper=upper, separator=separator, pad=pad)
    assert normalize_header(header) == normalize_header(alias)
    [match] = match_headers([header], table)
    assert match.method in ("exact", "alias")
    # an alias shared by several columns of a table (e.g. "Customer") resolves to one of them
    assert match.target == target or normalize_header(alias) in {
        normalize_header(a) for t, aliases in ALIASES[table].items() if t == match.target for a in (*aliases, t)
    }


@settings(max_examples=200)
@given(
    table=st.sampled_from(sorted(ALIASES)),
    headers=st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=25),
)
def test_any_headers_match_without_crashing_and_no_target_is_used_twice(table, headers) -> None:
    matches = match_headers(headers, table)
    assert [m.source for m in matches] == headers
    targets = [m.target for m in matches if m.target]
    assert len(targets) == len(set(targets)), targets
    for m in matches:
        assert 0.0 <= m.score <= 100.0
