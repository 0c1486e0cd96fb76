"""Checks that the recipes of docs/ANALYSTS.md give the answers printed there.

Usage: python check_recipes.py DIR

DIR holds the exports of `tandem demo --today 2026-06-01` (seed 7, 300
people, 6 months) as the recipes make them: events.parquet, by-type/ and
facts/. Exits 1 listing every answer that differs from the document.
"""

import os
import sys

import duckdb
import pandas as pd

failures = []


def same(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got}, the document says {want}")


def main(d):
    con = duckdb.connect()
    ev = os.path.join(d, "events.parquet")
    by_type = os.path.join(d, "by-type")
    facts = os.path.join(d, "facts")

    types = con.execute(f"SELECT event_type, count(*) AS n FROM '{ev}' GROUP BY ALL ORDER BY n DESC, event_type").fetchall()
    same("events per type", types, [
        ("FeedbackGiven", 531), ("SessionHeld", 425), ("PersonRegistered", 300), ("ParticipantEnrolled", 205),
        ("GoalSet", 203), ("GoalProgressRecorded", 174), ("SessionScheduled", 139), ("GoalCompleted", 101),
        ("PairFormed", 86), ("PairDissolved", 56), ("GoalAbandoned", 29), ("PersonUpdated", 24), ("PersonLeft", 14),
        ("SessionCancelled", 13), ("PairPaused", 7), ("PairResumed", 7), ("ParticipantWithdrew", 4),
        ("ProgramLaunched", 2),
    ])
    counts = pd.read_parquet(ev).event_type.value_counts()
    same("events per type (pandas)", sorted(counts.items()), sorted(types))

    months = [("2025-12", 78, 45.0), ("2026-01", 88, 45.0), ("2026-02", 94, 45.0), ("2026-03", 79, 45.0),
              ("2026-04", 40, 45.0), ("2026-05", 46, 45.0)]
    held = con.execute(
        f"SELECT strftime(date_trunc('month', held_at), '%Y-%m'), count(*), median(minutes) "
        f"FROM '{facts}/sessions.parquet' WHERE status = 'HELD' GROUP BY ALL ORDER BY 1"
    ).fetchall()
    same("sessions per month (facts)", held, months)
    split = con.execute(
        f"SELECT strftime(date_trunc('month', heldAt), '%Y-%m'), count(*), median(minutes) "
        f"FROM '{by_type}/SessionHeld.parquet' GROUP BY ALL ORDER BY 1"
    ).fetchall()
    same("sessions per month (split)", split, months)
    s = pd.read_parquet(f"{facts}/sessions.parquet")
    h = s[s.status == "HELD"]
    agg = h.groupby(h.held_at.dt.strftime("%Y-%m")).minutes.agg(["count", "median"])
    same("sessions per month (pandas)", [(m, int(r["count"]), float(r["median"])) for m, r in agg.iterrows()], months)

    cohorts = con.execute(
        f"SELECT cohort, count(*), count(first_paired_on), round(count(first_paired_on) / count(*), 3) "
        f"FROM '{facts}/participants.parquet' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    same("match rate per cohort", cohorts, [
        ("2025-12", 185, 160, 0.865), ("2026-01", 7, 7, 1.0), ("2026-02", 3, 3, 1.0), ("2026-03", 2, 2, 1.0),
        ("2026-04", 5, 5, 1.0), ("2026-05", 3, 3, 1.0),
    ])

    early = con.execute(
        f"SELECT dissolve_reason, count(*) FROM '{facts}/pairs.parquet' "
        f"WHERE dissolved_on - formed_on < 90 GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    same("early closures", early, [("COMPLETED", 9), ("MISMATCH", 8), ("MEMBER_LEFT", 4)])

    ratings = [(3.857, 3.967)]
    same("ratings (JSON)", con.execute(
        f"SELECT round(avg(CAST(data->>'$.ratings.empathy' AS INT)), 3), "
        f"round(avg(CAST(data->>'$.ratings.activeListening' AS INT)), 3) FROM '{ev}' WHERE event_type = 'FeedbackGiven'"
    ).fetchall(), ratings)
    same("ratings (typed)", con.execute(
        f"SELECT round(avg(ratingEmpathy), 3), round(avg(ratingActiveListening), 3) FROM '{by_type}/FeedbackGiven.parquet'"
    ).fetchall(), ratings)

    for f in failures:
        print(f, file=sys.stderr)
    print(f"checked the recipes of docs/ANALYSTS.md: {len(failures)} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
