"""The sample-world generator: determinism, canonical shape, and the known mechanisms behind lateness."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from dashboard.cli import main as cli_main
from dashboard.config import SAMPLE_DATA_DIR
from dashboard.errors import SyntheticConfigError
from dashboard.schema import CANONICAL_COLUMNS
from dashboard.synthetic import (
    CollectionsPolicy,
    TouchStep,
    WorldConfig,
    default_policy,
    generate_world,
    no_touch_policy,
    policy_from_dict,
    write_sample_data,
    write_world,
)
from dashboard.synthetic.model import response_probability

CONFIG = WorldConfig(seed=7, n_customers=200, months=24)
TABLES = tuple(CANONICAL_COLUMNS)


@pytest.fixture(scope="module")
def world():
    return generate_world(CONFIG)


@pytest.fixture(scope="module")
def quiet_world():
    return generate_world(CONFIG, no_touch_policy())


def observed_days_late(world) -> pl.DataFrame:
    """Days late per fully paid invoice as a reader of the canonical files would compute them."""
    invoices = world.frames["invoices"].filter(pl.col("doc_type") == "invoice")
    paid = (
        world.frames["payments"]
        .group_by("invoice_id")
        .agg(paid=pl.col("amount").sum(), last_payment=pl.col("payment_date").max())
    )
    adjusted = world.frames["adjustments"].group_by("invoice_id").agg(adjusted=pl.col("amount").sum())
    return (
        invoices.join(paid, on="invoice_id", how="inner")
        .join(adjusted, on="invoice_id", how="left")
        .filter((pl.col("amount") - pl.col("paid") + pl.col("adjusted").fill_null(0.0)).abs() < 0.011)
        .with_columns(days_late=(pl.col("last_payment") - pl.col("due_date")).dt.total_days())
    )


def test_same_seed_gives_identical_world_and_another_seed_does_not():
    small = WorldConfig(seed=11, n_customers=40, months=12)
    first, second = generate_world(small), generate_world(small)
    for table in TABLES:
        assert first.frames[table].equals(second.frames[table]), table
    for name in first.truth:
        assert first.truth[name].equals(second.truth[name]), name
    other = generate_world(replace(small, seed=12))
    assert not other.frames["invoices"].equals(first.frames["invoices"])


def test_write_sample_data_is_byte_identical_to_committed_sample(tmp_path: Path):
    written = write_sample_data(tmp_path)
    committed = sorted(
        p.relative_to(SAMPLE_DATA_DIR)
        for p in SAMPLE_DATA_DIR.rglob("*")
        # extracts/ holds vendor-format samples written by hand, not by the generator
        if p.is_file() and p.name != "README.md" and p.relative_to(SAMPLE_DATA_DIR).parts[0] != "extracts"
    )
    assert sorted(p.relative_to(tmp_path) for p in written) == committed
    for relative in committed:
        assert (tmp_path / relative).read_bytes() == (SAMPLE_DATA_DIR / relative).read_bytes(), relative
    total_bytes = sum((SAMPLE_DATA_DIR / r).stat().st_size for r in committed)
    assert total_bytes < 10 * 1024 * 1024


def test_columns_match_canonical_columns_and_ids_keep_leading_zeros(world, tmp_path: Path):
    for table in TABLES:
        assert world.frames[table].columns == list(CANONICAL_COLUMNS[table]), table
    assert world.frames["customers"]["customer_id"][0] == "C000001"
    assert world.frames["invoices"]["invoice_id"][0] == "INV-000001"
    assert world.frames["invoices"]["invoice_id"].is_unique().all()
    paths = write_world(world, tmp_path, include_truth=False)
    assert [p.name for p in paths] == [f"{t}.csv" for t in TABLES]
    header = (tmp_path / "invoices.csv").read_text().splitlines()[0]
    assert header == ",".join(CANONICAL_COLUMNS["invoices"])
    # money has two decimals, dates are ISO, timestamps have seconds
    first_invoice = (tmp_path / "invoices.csv").read_text().splitlines()[1].split(",")
    assert first_invoice[3] == world.frames["invoices"]["invoice_date"][0].isoformat()
    assert len(first_invoice[7].split(".")[1]) == 2
    first_contact = (tmp_path / "contacts.csv").read_text().splitlines()[1].split(",")
    datetime.strptime(first_contact[3], "%Y-%m-%d %H:%M:%S")


def test_nothing_is_observed_after_the_end_date(world):
    end = CONFIG.end_date
    assert end == date(2025, 9, 30)
    frames = world.frames
    assert frames["invoices"]["invoice_date"].max() <= end
    assert frames["payments"]["payment_date"].max() <= end
    assert frames["adjustments"]["adjustment_date"].max() <= end
    assert frames["disputes"]["opened_date"].max() <= end
    assert frames["disputes"]["resolved_date"].drop_nulls().max() <= end
    end_of_day = datetime.combine(end + timedelta(days=1), datetime.min.time())
    assert frames["contacts"]["ts"].max() < end_of_day
    assert frames["notes"]["ts"].max() < end_of_day
    assert frames["fx_rates"]["date"].max() == end
    assert frames["fx_rates"].height == 3 * ((end - CONFIG.start).days + 1)  # EUR, GBP, CAD daily
    # open disputes at the end have no resolution yet
    still_open = frames["disputes"].filter(pl.col("resolved_date").is_null())
    assert still_open["resolution"].null_count() == still_open.height


def test_due_date_is_invoice_date_plus_terms_days(world):
    invoices = world.frames["invoices"]
    mismatched = invoices.filter(pl.col("due_date") != pl.col("invoice_date") + pl.duration(days=pl.col("terms_days")))
    assert mismatched.height == 0
    terms = dict(invoices.select("terms_code", "terms_days").unique().iter_rows())
    assert terms == {"NET15": 15, "NET30": 30, "NET45": 45, "NET60": 60, "2-10-NET30": 30, "DUE_ON_RECEIPT": 0}
    memos = invoices.filter(pl.col("doc_type") == "credit_memo")
    assert memos.height > 0 and memos["amount"].max() < 0


def test_payments_never_exceed_the_invoice_amount(world):
    invoices = world.frames["invoices"].filter(pl.col("doc_type") == "invoice")
    paid = world.frames["payments"].drop_nulls("invoice_id").group_by("invoice_id").agg(paid=pl.col("amount").sum())
    adjusted = world.frames["adjustments"].group_by("invoice_id").agg(adjusted=pl.col("amount").sum())
    settled = (
        invoices.join(paid, on="invoice_id", how="left")
        .join(adjusted, on="invoice_id", how="left")
        .with_columns(open=pl.col("amount") - pl.col("paid").fill_null(0.0) + pl.col("adjusted").fill_null(0.0))
    )
    assert settled["open"].min() > -0.011
    # credit memos are applied to the account within ~6 weeks, so old ones are closed
    memos = world.frames["invoices"].filter(pl.col("doc_type") == "credit_memo")
    memos = memos.join(adjusted, on="invoice_id", how="left").with_columns(
        open=pl.col("amount") + pl.col("adjusted").fill_null(0.0)
    )
    old = memos.filter(pl.col("invoice_date") < pl.lit(CONFIG.end_date) - pl.duration(days=60))
    assert old.height > 0 and old["open"].abs().max() < 0.005
    assert world.frames["payments"]["invoice_id"].null_count() > 0  # some unapplied cash
    # ~5% partial payments: invoices with two payment rows
    per_invoice = world.frames["payments"].drop_nulls("invoice_id").group_by("invoice_id").len()
    assert 0.02 < (per_invoice["len"] == 2).mean() < 0.08


def test_truth_days_late_match_what_the_files_show(world):
    observed = observed_days_late(world)
    truth = world.truth["truth_invoices"].filter(pl.col("days_late").is_not_null())
    joined = observed.join(truth.select("invoice_id", truth_days=pl.col("days_late")), on="invoice_id", how="inner")
    assert joined.height == truth.height
    assert (joined["days_late"] == joined["truth_days"]).all()
    # the recorded mechanisms add up: final = due + base + dispute - touches - discount
    parts = world.truth["truth_invoices"].filter(pl.col("latent_pay_date").is_not_null())
    rebuilt = parts.join(world.frames["invoices"].select("invoice_id", "due_date"), on="invoice_id").with_columns(
        rebuilt=pl.col("due_date")
        + pl.duration(
            days=pl.col("base_delay_days")
            + pl.col("dispute_delay_days")
            - pl.col("touch_pull_forward_days")
            - pl.col("discount_pull_forward_days")
        )
    )
    assert (rebuilt["rebuilt"] == rebuilt["latent_pay_date"]).all()


def test_behaviour_classes_order_by_mean_days_late(world):
    by_segment = dict(world.truth["truth_invoices"].group_by("segment").agg(pl.col("days_late").mean()).iter_rows())
    assert by_segment["prompt"] < by_segment["on_time"] < by_segment["slow"] < by_segment["chronic_late"]
    assert by_segment["on_time"] < by_segment["disputer"] < by_segment["chronic_late"]
    assert by_segment["prompt"] < 0  # prompt payers pay before due


def test_disputed_invoices_are_later_than_undisputed_in_the_same_class(world):
    means = (
        world.truth["truth_invoices"]
        .filter(pl.col("days_late").is_not_null())
        .group_by("segment", "disputed")
        .agg(pl.col("days_late").mean(), pl.len())
    )
    for segment in ("on_time", "slow", "disputer"):
        disputed = means.filter(pl.col("segment") == segment, pl.col("disputed"))["days_late"][0]
        clean = means.filter(pl.col("segment") == segment, ~pl.col("disputed"))["days_late"][0]
        assert disputed > clean + 3, segment
    disputes = world.frames["disputes"]
    assert set(disputes["category"]) == {"pricing", "quantity", "quality", "missing PO", "duplicate billing"}
    invoices = world.frames["invoices"].filter(pl.col("doc_type") == "invoice").height
    assert 0.03 < disputes.height / invoices < 0.08


def test_no_touch_replay_changes_only_the_policy_mechanism(world, quiet_world):
    for table in ("customers", "invoices", "disputes", "notes", "fx_rates"):
        assert world.frames[table].equals(quiet_world.frames[table]), table
    assert quiet_world.frames["contacts"].height == 0
    active, quiet = world.truth["truth_invoices"], quiet_world.truth["truth_invoices"]
    assert active.select("base_delay_days", "dispute_delay_days").equals(
        quiet.select("base_delay_days", "dispute_delay_days")
    )
    both = active.join(quiet.select("invoice_id", quiet_pay=pl.col("latent_pay_date")), on="invoice_id").filter(
        pl.col("latent_pay_date").is_not_null()
    )
    gained = (both["quiet_pay"] - both["latent_pay_date"]).dt.total_days()
    assert gained.min() >= 0
    assert gained.sum() == both["touch_pull_forward_days"].sum() > 0
    paid_both = active.join(quiet.select("invoice_id", quiet_days=pl.col("days_late")), on="invoice_id").drop_nulls(
        ["days_late", "quiet_days"]
    )
    assert paid_both["quiet_days"].mean() > paid_both["days_late"].mean() + 1.0
    # consistent with truth_effects: response rates match the table, and the days gained never
    # exceed the expected uncapped pull-forward of the touches sent
    touches = (
        world.frames["contacts"]
        .join(world.truth["truth_touches"], on="contact_id")
        .join(world.truth["truth_effects"], on=["segment", "channel", "tone"])
        .filter(pl.col("outcome") != "dispute raised")
    )
    expected = touches["response_probability"].sum()
    spread = (touches["response_probability"] * (1 - touches["response_probability"])).sum() ** 0.5
    assert abs(touches["responded"].sum() - expected) < 4 * spread
    for (segment, channel, tone), cell in touches.group_by("segment", "channel", "tone"):
        if cell.height >= 400:
            p = response_probability(segment, channel, tone)
            assert abs(cell["responded"].mean() - p) < 4 * (p * (1 - p) / cell.height) ** 0.5
    bound = (touches["response_probability"] * touches["pull_forward_days_mean"]).sum()
    assert 0 < gained.sum() <= bound


def test_daily_capacity_is_never_exceeded_and_smaller_amounts_are_dropped():
    config = WorldConfig(seed=3, n_customers=120, months=12)
    capped_policy = replace(default_policy(), daily_capacity=4)
    capped = generate_world(config, capped_policy)
    free = generate_world(config)
    per_day = capped.frames["contacts"].group_by(pl.col("ts").dt.date()).len()
    assert per_day["len"].max() == 4
    assert capped.frames["contacts"].height < free.frames["contacts"].height
    amounts = capped.frames["invoices"].select("invoice_id", "amount_base")
    touched = capped.frames["contacts"].join(amounts, on="invoice_id")["amount_base"].mean()
    untouched = free.frames["contacts"].join(amounts, on="invoice_id")["amount_base"].mean()
    assert touched > untouched
    assert capped.frames["invoices"].equals(free.frames["invoices"])
    assert (
        capped.truth["truth_invoices"]["touch_pull_forward_days"].sum()
        < free.truth["truth_invoices"]["touch_pull_forward_days"].sum()
    )


def test_behaviour_change_shifts_lateness_after_the_change_month(world):
    changed = world.truth["truth_customers"].filter(pl.col("change_kind").is_not_null())
    assert set(changed["change_kind"]) == {"new_cfo", "cash_squeeze"}
    invoices = (
        world.truth["truth_invoices"]
        .join(changed, on="customer_id")
        .join(world.frames["invoices"].select("invoice_id", "invoice_date"), on="invoice_id")
        .with_columns(after=pl.col("invoice_date") >= pl.col("change_month"))
        .group_by("change_kind", "after")
        .agg(pl.col("base_delay_days").mean())
    )
    shift = {
        kind: dict(invoices.filter(pl.col("change_kind") == kind).select("after", "base_delay_days").iter_rows())
        for kind in ("new_cfo", "cash_squeeze")
    }
    assert shift["cash_squeeze"][True] > shift["cash_squeeze"][False] + 10
    assert shift["new_cfo"][True] < shift["new_cfo"][False] - 5
    squeeze_ids = changed.filter(pl.col("change_kind") == "cash_squeeze")["customer_id"]
    distress = world.frames["notes"].filter(
        pl.col("customer_id").is_in(squeeze_ids.implode()), pl.col("text").str.contains("(?i)cash flow is tight")
    )
    assert distress.height >= squeeze_ids.len()


def test_promises_and_outcomes_agree_with_what_happens_next(world):
    contacts = world.frames["contacts"]
    assert set(contacts["outcome"]) <= {
        "no response",
        "promise to pay",
        "paid",
        "dispute raised",
        "bounced",
        "wrong contact",
    }
    promises = contacts.filter(pl.col("outcome") == "promise to pay")
    assert promises["promise_date"].null_count() == 0
    assert (
        contacts.filter(pl.col("outcome") != "promise to pay")["promise_date"].null_count()
        == contacts.height - promises.height
    )
    kept = world.truth["truth_promises"]
    assert 0.5 < kept["kept"].mean() < 1.0  # most promises are kept, some broken
    last_payment = (
        world.frames["payments"].drop_nulls("invoice_id").group_by("invoice_id").agg(pl.col("payment_date").max())
    )
    paid_touches = contacts.filter(pl.col("outcome") == "paid").join(last_payment, on="invoice_id")
    assert ((paid_touches["payment_date"] - paid_touches["ts"].dt.date()).dt.total_days() <= 2).all()


def test_early_pay_discount_offer_is_taken_and_recorded():
    config = WorldConfig(seed=5, n_customers=80, months=12)
    offer = replace(default_policy(), early_pay_discount={"slow": 0.03})
    base, offered = generate_world(config), generate_world(config, offer)
    taken = {
        name: w.truth["truth_invoices"].filter(pl.col("segment") == "slow")["discount_taken"].sum()
        for name, w in (("base", base), ("offered", offered))
    }
    assert taken["offered"] > 2 * taken["base"]
    assert offered.frames["invoices"].equals(base.frames["invoices"])
    discounts = offered.frames["adjustments"].filter(pl.col("kind") == "discount")
    assert discounts["amount"].max() < 0
    # a 3% discount: each adjustment is 3% (slow, offered) or 2% (2/10 Net 30 terms) of the invoice
    shares = discounts.join(
        offered.frames["invoices"].select("invoice_id", "amount"), on="invoice_id", suffix="_invoice"
    )
    ratio = (-shares["amount"] / shares["amount_invoice"]).round(2)
    assert set(ratio.unique()) <= {0.02, 0.03} and (ratio == 0.03).sum() > 0


def test_open_receivables_at_the_end_age_realistically(world):
    invoices = world.frames["invoices"].filter(pl.col("doc_type") == "invoice")
    paid = world.frames["payments"].drop_nulls("invoice_id").group_by("invoice_id").agg(paid=pl.col("amount").sum())
    adjusted = world.frames["adjustments"].group_by("invoice_id").agg(adjusted=pl.col("amount").sum())
    open_items = (
        invoices.join(paid, on="invoice_id", how="left")
        .join(adjusted, on="invoice_id", how="left")
        .with_columns(open=pl.col("amount") - pl.col("paid").fill_null(0.0) + pl.col("adjusted").fill_null(0.0))
        .filter(pl.col("open") > 0.01)
        .with_columns(days_past_due=(pl.lit(CONFIG.end_date) - pl.col("due_date")).dt.total_days())
    )
    current = open_items.filter(pl.col("days_past_due") <= 0)["open"].sum()
    over_90 = open_items.filter(pl.col("days_past_due") > 90)
    assert current / open_items["open"].sum() > 0.5
    assert over_90.height > 0
    write_offs = world.frames["adjustments"].filter(pl.col("kind") == "write_off")
    assert write_offs.height > 0


def test_policy_round_trips_through_json_and_bad_values_are_refused(tmp_path: Path):
    policy = replace(
        default_policy(), daily_capacity=30, segment_steps={"slow": (TouchStep(3, "call", "call", "firm"),)}
    )
    assert policy_from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    with pytest.raises(SyntheticConfigError, match="'pigeon'"):
        generate_world(CONFIG, CollectionsPolicy(steps=(TouchStep(1, "reminder", "pigeon", "friendly"),)))
    with pytest.raises(SyntheticConfigError, match=r"\[7, 7\]"):
        generate_world(CONFIG, CollectionsPolicy(steps=(TouchStep(7, "reminder", "email", "friendly"),) * 2))
    with pytest.raises(SyntheticConfigError, match="n_customers=0"):
        generate_world(WorldConfig(n_customers=0))


def test_generate_command_writes_world_with_truth_and_policy(tmp_path: Path, capsys):
    policy_file = tmp_path / "quiet.json"
    policy_file.write_text(json.dumps(no_touch_policy().to_dict()))
    out = tmp_path / "world"
    code = cli_main(
        [
            "generate",
            "--out",
            str(out),
            "--customers",
            "30",
            "--months",
            "6",
            "--seed",
            "9",
            "--start",
            "2024-01-01",
            "--policy",
            str(policy_file),
        ]
    )
    assert code == 0
    summary = capsys.readouterr().out
    assert "30 customers" in summary and "2024-01-01 to 2024-06-30" in summary
    assert {p.name for p in out.glob("*.csv")} == {f"{t}.csv" for t in TABLES}
    assert (out / "truth" / "truth_invoices.csv").is_file()
    assert json.loads((out / "truth" / "policy.json").read_text())["name"] == "no_touch"
    assert pl.read_csv(out / "contacts.csv").height == 0
    assert (
        cli_main(
            [
                "generate",
                "--out",
                str(tmp_path / "p"),
                "--customers",
                "5",
                "--months",
                "2",
                "--format",
                "parquet",
                "--no-truth",
            ]
        )
        == 0
    )
    assert pl.read_parquet(tmp_path / "p" / "invoices.parquet").columns == list(CANONICAL_COLUMNS["invoices"])
    assert not (tmp_path / "p" / "truth").exists()
    assert cli_main(["generate", "--out", str(tmp_path / "bad"), "--start", "2024-02-30"]) == 2
    assert "2024-02-30" in capsys.readouterr().err
