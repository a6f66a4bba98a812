"""Genuine exports no one here wrote (tests/fixtures/real, provenance in MANIFEST.json): each
loads through the command line to the open AR it states, or is refused with the message in
the table below. Public datasets (tests/fixtures/public) load to what they state too.

The table is the product's promise per file:

- ``open``: what is open after the load, per currency (the file's own total, as MANIFEST.json
  records it, or what it states once its drafts are left out);
- ``refused``: the start of the plain message the load stops with (nothing is written);
- ``as_of``: the date given on the command line, for files that say what is open but not
  on which date (they are refused without it, asking for it);
- ``confirm``: the file's column mapping needs a person's confirmation (a guessed column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dashboard import cli, metrics
from dashboard.store import Store

REAL = Path(__file__).parent / "fixtures" / "real"
MANIFEST = {entry["file"]: entry for entry in json.loads((REAL / "MANIFEST.json").read_text())}


@dataclass(frozen=True)
class Case:
    file: str
    open: dict[str, str] = field(default_factory=dict)  # currency -> open amount after the load
    refused: str | None = None
    as_of: str | None = None
    confirm: bool = False
    stated_as_of: str | None = None  # the date the file itself gives (title or footer)
    invoices: int | None = None
    note: str = ""


CASES = [
    Case("quickbooks/qbToJson__Sandbox Company_US_1_A_R Aging Summary Report.csv",
         refused="is a QuickBooks A/R Aging Summary: one line per customer", note="Its TOTAL is 5,281.52"),
    Case("quickbooks/qbToJson__Sandbox Company_US_1_A_R Aging Summary Report.xlsx",
         refused="is a QuickBooks A/R Aging Summary: one line per customer", note="Its TOTAL is 5,281.52"),
    Case("quickbooks/demolition_estimating__test_company_ar_aging summary report.xlsx",
         refused="is a QuickBooks A/R Aging Summary: one line per customer"),
    # 872 lines: 863 invoices and 9 voided copies at 0.00; S033 and S051 are used by two jobs each
    Case("quickbooks/tcc-projecthub__The Controls Company_Invoice List by Date.csv",
         open={"USD": "0.00"}, stated_as_of="2026-04-10", invoices=863),
    Case("quickbooks/tcc-projecthub__The Controls Company_Invoice List by Date.xlsx",
         open={"USD": "163014.88"}, stated_as_of="2026-04-07", invoices=37),
    Case("freshbooks/invoiceninja__freshbooks_invoices.csv", open={"USD": "7890.00"}, invoices=1),
    Case("invoice2go/invoiceninja__i2g_invoices.csv", open={"ILS": "953.55", "USD": "510.30"}, as_of="2021-01-28", invoices=4),
    Case("invoicely/invoiceninja__invoicely_invoices.csv", open={"USD": "1020.00"}, confirm=True, invoices=1),
    Case("wave/invoiceninja__wave_invoices.csv", open={"USD": "8474.41"}, invoices=3),
    # all three are drafts: not receivables (MANIFEST's 1,339.75 counts the drafts)
    Case("zoho/invoiceninja__zoho_invoices.csv", open={}, invoices=0),
    # Faker demo data: 215 of its 401 rows are due before they were issued
    Case("other/invoiceninja__invoice.csv", refused="rows (54%) have problems"),  # its title dates it: 2020-12-19
    Case("../public/ibm_watson__WA_Fn-UseC_-Accounts-Receivable.csv", open={"USD": "0.00"}, invoices=2466),
    Case("../public/yellevate__Yellevate Invoices.csv", open={"USD": "0.00"}, invoices=2466),
    # 1,890 invoices: 350 drafts (542,978.37 due) left out, 2 due before issued set aside (both paid)
    Case("../public/a2z_furniture_xero__A2Z_Furniture_Dashboard_Data.xlsx", open={"USD": "207617.21"},
         as_of="2026-06-01", invoices=1538),
]


def test_every_collected_export_has_a_case() -> None:
    assert {c.file for c in CASES} == set(MANIFEST)


def _load(db: Path, case: Case, capsys: pytest.CaptureFixture[str], *, with_as_of: bool = True) -> tuple[int, str]:
    args = ["load", "--db", str(db), str(REAL / case.file)]
    if case.as_of and with_as_of:
        args += ["--as-of", case.as_of]
    if case.confirm:
        args += ["--accept-fuzzy"]
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("case", CASES, ids=[Path(c.file).name[:40] for c in CASES])
def test_a_genuine_export_loads_to_what_it_states_or_is_refused_with_a_reason(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "recoup.duckdb"
    if case.as_of and case.refused is None:
        # without the date its balances are for, nothing is written and the date is asked for
        code, said = _load(db, case, capsys, with_as_of=False)
        assert code != 0 and "does not say on which date" in said
        with Store(db) as store:
            assert store.scalar("SELECT count(*) FROM loads") == 0
    code, said = _load(db, case, capsys)
    with Store(db) as store:
        if case.refused is not None:
            assert code != 0 and case.refused in said, said
            assert case.note in said
            assert "_duplicated_" not in said and "__UNNAMED__" not in said  # no internal placeholder names
            assert store.scalar("SELECT count(*) FROM loads") == 0 and store.scalar("SELECT count(*) FROM invoices") == 0
            return
        assert code == 0, said
        open_by_currency = {
            currency: Decimal(str(total)).quantize(Decimal("0.01"))
            for currency, total in store.query(
                "SELECT coalesce(currency, 'USD') AS currency, sum(open_amount)::DECIMAL(18,2) AS total "
                "FROM ledger_documents GROUP BY 1"
            ).rows()
        }
        assert open_by_currency == {k: Decimal(v) for k, v in case.open.items()} or (
            not case.open and all(v == 0 for v in open_by_currency.values())
        )
        if case.invoices is not None:
            assert store.scalar("SELECT count(*) FROM invoices") == case.invoices
        if case.stated_as_of is not None:
            day = date.fromisoformat(case.stated_as_of)
            assert store.scalar("SELECT max(as_of_date) FROM loads") == day
            # the KPIs read the same open AR on the date the file describes
            assert metrics.compute_kpis(store, day).ar_total == pytest.approx(float(case.open["USD"]))
