"""Checks that DuckDB and pandas read every export format as written.

Usage: python check_exports.py DIR

DIR holds what `services/tandem/tests/analysts.rs` wrote with `tandem export`:

    events.ndjson, events.csv, events.parquet     the whole log
    events-by-type/<EventType>.parquet            the log split by event type
    facts-ndjson/, facts-csv/, facts-parquet/     <table>.<format> per fact table
    expected.json   {"events": N, "event_types": {type: n}, "facts": {table: n},
                     "personal": [strings that must not appear],
                     "person_ids": [ids that must not appear]}

Checks, for every file, with both DuckDB and pandas: the row count equals
the log (or the fact table); the columns are the documented ones with the
right types; the cursors are unique and in feed order; no personal value
appears in any cell. Then the DuckDB and pandas recipes of docs/ANALYSTS.md
give the same answers on every format. Exits 1 listing every failure.
"""

import json
import os
import sys

import duckdb
import pandas as pd

EVENT_COLUMNS = [
    "cursor", "position", "transaction_id", "stream_type", "stream_id", "stream_version", "event_id",
    "event_type", "schema_version", "recorded_at", "actor_role", "correlation_id", "data",
]
# DuckDB's types of the Parquet columns.
PARQUET_TYPES = {
    "cursor": "VARCHAR", "position": "BIGINT", "transaction_id": "UBIGINT", "stream_type": "VARCHAR",
    "stream_id": "VARCHAR", "stream_version": "INTEGER", "event_id": "VARCHAR", "event_type": "VARCHAR",
    "schema_version": "SMALLINT", "recorded_at": "TIMESTAMP WITH TIME ZONE", "actor_role": "VARCHAR",
    "correlation_id": "VARCHAR", "data": "VARCHAR",
}
FACT_TABLES = ["people", "participants", "pairs", "sessions", "goals"]
# Some typed payload columns of the split export, with DuckDB's types.
SPLIT_TYPES = {
    "PairFormed": {"members": "VARCHAR[]", "formedOn": "DATE", "matchScore": "DOUBLE", "programId": "VARCHAR"},
    "SessionHeld": {"heldAt": "TIMESTAMP WITH TIME ZONE", "minutes": "INTEGER", "activities": "VARCHAR[]"},
    "FeedbackGiven": {"ratingEmpathy": "SMALLINT", "givenAt": "TIMESTAMP WITH TIME ZONE", "from": "VARCHAR"},
    "PersonRegistered": {"level": "SMALLINT", "hiredOn": "DATE", "department": "VARCHAR"},
    "ParticipantEnrolled": {"enrolledOn": "DATE", "interestCount": "INTEGER"},
}
failures = []
checks = 0


def check(ok, message):
    global checks
    checks += 1
    if not ok:
        failures.append(message)


def duck_read(path):
    if path.endswith(".parquet"):
        return f"read_parquet('{path}')"
    if path.endswith(".csv"):
        return f"read_csv('{path}', header = true, auto_detect = true)"
    return f"read_json('{path}', format = 'newline_delimited')"


def pandas_read(path):
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_json(path, lines=True, dtype=False, convert_dates=False)


def cells(df):
    """Every cell as text (JSON documents included)."""
    for col in df.columns:
        for v in df[col].tolist():
            if v is None:
                continue
            yield json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)


def check_private(name, df, expected):
    personal = set(expected["personal"]) | set(expected["person_ids"])
    leaked = set()
    for text in cells(df):
        for p in personal:
            if p in text:
                leaked.add(p)
    check(not leaked, f"{name}: personal values appear: {sorted(leaked)[:5]}")


def check_events(directory, expected):
    for fmt in ("ndjson", "csv", "parquet"):
        path = os.path.join(directory, f"events.{fmt}")
        name = f"events.{fmt}"
        con = duckdb.connect()
        n = con.execute(f"SELECT count(*) FROM {duck_read(path)}").fetchone()[0]
        check(n == expected["events"], f"{name}: DuckDB reads {n} rows, the log has {expected['events']}")
        cols = [d[0] for d in con.execute(f"SELECT * FROM {duck_read(path)} LIMIT 0").description]
        check(cols == EVENT_COLUMNS, f"{name}: DuckDB columns {cols}")
        if fmt == "parquet":
            types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {duck_read(path)}").fetchall()}
            check(types == PARQUET_TYPES, f"{name}: DuckDB types {types}")
        else:
            # The text formats carry the same values: they cast to the types.
            bad = con.execute(
                f"SELECT count(*) FROM {duck_read(path)} WHERE TRY_CAST(recorded_at AS TIMESTAMPTZ) IS NULL "
                f"OR TRY_CAST(position AS BIGINT) IS NULL OR TRY_CAST(transaction_id AS UBIGINT) IS NULL"
            ).fetchone()[0]
            check(bad == 0, f"{name}: {bad} rows whose instants or numbers do not cast")
        by_type = dict(con.execute(f"SELECT event_type, count(*) FROM {duck_read(path)} GROUP BY 1").fetchall())
        check(by_type == expected["event_types"], f"{name}: DuckDB counts by type {by_type}")
        # The cursors, in the file's order, are the feed order.
        keys = con.execute(
            f"SELECT CAST(split_part(cursor, '-', 1) AS UBIGINT), CAST(split_part(cursor, '-', 2) AS BIGINT) "
            f"FROM {duck_read(path)}"
        ).fetchall()
        check(keys == sorted(keys) and len(set(keys)) == len(keys), f"{name}: cursors are not in feed order")

        df = pandas_read(path)
        check(len(df) == expected["events"], f"{name}: pandas reads {len(df)} rows")
        check(list(df.columns) == EVENT_COLUMNS, f"{name}: pandas columns {list(df.columns)}")
        if fmt == "parquet":
            check(str(df["recorded_at"].dtype) == "datetime64[us, UTC]", f"{name}: recorded_at is {df['recorded_at'].dtype}")
            check(str(df["position"].dtype) == "int64", f"{name}: position is {df['position'].dtype}")
            check(str(df["schema_version"].dtype) == "int16", f"{name}: schema_version is {df['schema_version'].dtype}")
        parsed = pd.to_datetime(df["recorded_at"], utc=True, format="ISO8601") if fmt != "parquet" else df["recorded_at"]
        check(parsed.notna().all(), f"{name}: pandas cannot parse every recorded_at")
        payloads = df["data"].map(lambda d: d if isinstance(d, dict) else json.loads(d))
        check(all(isinstance(p, dict) for p in payloads), f"{name}: data is not a JSON object everywhere")
        check_private(name, df, expected)


def check_split(directory, expected):
    """The export split by event type: one typed table per type, together the whole log."""
    split = os.path.join(directory, "events-by-type")
    envelope = EVENT_COLUMNS[:-1]
    con = duckdb.connect()
    files = sorted(f for f in os.listdir(split) if f.endswith(".parquet"))
    check(files == sorted(f"{t}.parquet" for t in expected["event_types"]), f"events-by-type: files {files}")
    for event_type, count in expected["event_types"].items():
        path = os.path.join(split, f"{event_type}.parquet")
        name = f"events-by-type/{event_type}"
        if not os.path.exists(path):
            continue
        n, other = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE event_type <> '{event_type}') FROM {duck_read(path)}"
        ).fetchone()
        check(n == count and other == 0, f"{name}: DuckDB reads {n} rows ({other} of another type), expected {count}")
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {duck_read(path)}").fetchall()}
        check(list(types)[: len(envelope)] == envelope, f"{name}: the envelope columns are {list(types)}")
        check("data" not in types, f"{name}: has a JSON data column")
        for column, want in SPLIT_TYPES.get(event_type, {}).items():
            check(types.get(column) == want, f"{name}: {column} is {types.get(column)}, expected {want}")
        df = pd.read_parquet(path)
        check(len(df) == count, f"{name}: pandas reads {len(df)} rows")
        check_private(name, df, expected)
    glob = os.path.join(split, "*.parquet")
    n, cursors = con.execute(
        f"SELECT count(*), count(DISTINCT cursor) FROM read_parquet('{glob}', union_by_name = true)"
    ).fetchone()
    check(n == expected["events"] == cursors, f"events-by-type: {n} rows, {cursors} cursors together")
    # The typed columns hold the values of the JSON payload of the one-file export.
    held = os.path.join(split, "SessionHeld.parquet")
    if os.path.exists(held):
        typed = con.execute(f"SELECT count(*), sum(minutes) FROM {duck_read(held)}").fetchone()
        one = os.path.join(directory, "events.parquet")
        from_json = con.execute(
            f"SELECT count(*), sum(CAST(json_extract(data, '$.minutes') AS INTEGER)) FROM {duck_read(one)} "
            f"WHERE event_type = 'SessionHeld'"
        ).fetchone()
        check(typed == from_json, f"events-by-type: SessionHeld minutes {typed} differ from the JSON's {from_json}")


def check_facts(directory, expected):
    answers = {}
    for fmt in ("ndjson", "csv", "parquet"):
        for table in FACT_TABLES:
            path = os.path.join(directory, f"facts-{fmt}", f"{table}.{fmt}")
            name = f"facts-{fmt}/{table}"
            con = duckdb.connect()
            n = con.execute(f"SELECT count(*) FROM {duck_read(path)}").fetchone()[0]
            check(n == expected["facts"][table], f"{name}: DuckDB reads {n} rows, expected {expected['facts'][table]}")
            df = pandas_read(path)
            check(len(df) == expected["facts"][table], f"{name}: pandas reads {len(df)} rows")
            check_private(name, df, expected)
        # A recipe of docs/ANALYSTS.md in both tools: participants and match rate per cohort.
        p = os.path.join(directory, f"facts-{fmt}", f"participants.{fmt}")
        con = duckdb.connect()
        duck = con.execute(
            f"SELECT program_id, cohort, count(*) AS people, "
            f"count(first_paired_on) AS matched FROM {duck_read(p)} "
            f"WHERE first_paired_on IS NULL OR CAST(first_paired_on AS VARCHAR) <> '' "
            f"GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        df = pandas_read(p)
        df["first_paired_on"] = df["first_paired_on"].replace("", None)
        pand = (
            df.groupby(["program_id", "cohort"])
            .agg(people=("person", "size"), matched=("first_paired_on", "count"))
            .reset_index()
            .sort_values(["program_id", "cohort"])
        )
        pand_rows = [(r.program_id, r.cohort, int(r.people), int(r.matched)) for r in pand.itertuples()]
        duck_rows = [(str(a), str(b), int(c), int(d)) for a, b, c, d in duck]
        check(duck_rows == pand_rows, f"facts-{fmt}: DuckDB and pandas disagree on the cohort recipe")
        answers[fmt] = duck_rows
    check(answers["ndjson"] == answers["csv"] == answers["parquet"], "the formats give different cohort answers")


def main(directory):
    with open(os.path.join(directory, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    check(expected["events"] > 0 and expected["personal"], "expected.json must describe a non-empty log")
    check_events(directory, expected)
    check_split(directory, expected)
    check_facts(directory, expected)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"checked {checks} properties of the exports with DuckDB {duckdb.__version__} and pandas {pd.__version__}: "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
