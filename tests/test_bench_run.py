"""bench/run.py rewrites only its own table in bench/RESULTS.md: the sections measured by hand
with their own commands stay (a partial run once wiped 470 lines of them)."""

from __future__ import annotations

from pathlib import Path

from bench.run import BEGIN, END, write_results


def _section(seconds: float) -> dict:
    row = {"step": "load", "size": "1,000 invoices", "seconds": seconds, "peak_mb": 10.0, "baseline": "bare",
           "baseline_seconds": 1.0, "ratio": seconds, "note": ""}
    return {"name": "ingest", "size": 1000, "rows": [row], "wall": 1.0, "peak_mb": 10.0, "code": 0,
            "log": Path("ingest-1000.log")}


def test_a_run_rewrites_its_table_and_keeps_the_hand_written_sections(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Measured by hand\n\nkeep me\n", encoding="utf-8")
    write_results([_section(1.5)], results)  # no markers yet: appended
    first = results.read_text(encoding="utf-8")
    assert first.startswith("# Benchmark results\n\n## Measured by hand\n\nkeep me\n")
    assert "| 1.50 |" in first and first.count(BEGIN) == 1

    results.write_text(first + "\n## Added later by hand\n\nkeep me too\n", encoding="utf-8")
    write_results([_section(2.25)], results)  # markers: only the table between them changes
    second = results.read_text(encoding="utf-8")
    assert "keep me\n" in second and second.endswith("## Added later by hand\n\nkeep me too\n")
    assert "| 2.25 |" in second and "| 1.50 |" not in second
    assert second.count(BEGIN) == 1 and second.count(END) == 1


def test_the_committed_results_carry_the_markers() -> None:
    text = (Path(__file__).resolve().parent.parent / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END)
