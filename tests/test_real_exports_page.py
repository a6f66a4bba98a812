"""The same genuine exports as tests/test_real_exports.py, loaded the way a person does it:
uploaded on the Data page (AppTest), the date given and the mapping confirmed where the page
asks, "Load into store" clicked. Each loads to the open AR it states, or the page shows the
refusal (and nothing is written)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.store import Store
from tests.test_real_exports import CASES, REAL, Case

ROOT = Path(__file__).resolve().parent.parent


def _plain(markdown: str) -> str:
    """What a person reads: the page escapes data in its Markdown (backslashes, word joiners)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def _uploaded(at: AppTest, case: Case) -> AppTest:
    path = REAL / case.file
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_uploads").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
    return at


@pytest.mark.parametrize("case", CASES, ids=[Path(c.file).name[:40] for c in CASES])
def test_a_genuine_export_uploaded_on_the_data_page_loads_to_what_it_states(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "recoup.duckdb"
    Store(db).close()
    monkeypatch.setenv("RECOUP_DB", str(db))
    at = _uploaded(AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run(), case)
    assert not at.exception
    errors = _plain(" ".join(e.value for e in at.error))
    load = [b for b in at.button if b.label == "Load into store"]
    if case.refused is not None and not load:
        # refused as soon as it is read (an aging summary): the page says why, nothing is written
        assert case.refused in errors
    else:
        if case.as_of:
            at.date_input[0].set_value(date.fromisoformat(case.as_of)).run()
        if case.confirm:
            next(c for c in at.checkbox if "matched by similarity" in c.label).check().run()
        next(b for b in at.button if b.label == "Load into store").click().run()
        assert not at.exception
        said = " ".join([*(e.value for e in at.error), *(s.value for s in at.success), *(w.value for w in at.warning)])
        said = _plain(said)
        if case.refused is not None:
            assert case.refused in said, said
    with Store(db) as store:
        if case.refused is not None:
            assert store.scalar("SELECT count(*) FROM invoices") == 0
            return
        open_by_currency = {
            currency: Decimal(str(total)).quantize(Decimal("0.01"))
            for currency, total in store.query(
                "SELECT coalesce(currency, 'USD') AS c, sum(open_amount)::DECIMAL(18,2) FROM ledger_documents GROUP BY 1"
            ).rows()
        }
        expected = {k: Decimal(v) for k, v in case.open.items()}
        assert open_by_currency == expected or (not case.open and all(v == 0 for v in open_by_currency.values()))
        if case.invoices is not None:
            assert store.scalar("SELECT count(*) FROM invoices") == case.invoices
