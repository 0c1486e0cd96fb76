"""Checks Tandem's Kaplan-Meier curves and log-rank tests against lifelines.

Usage: python check_survival.py CASES.json

CASES.json is a list of cases written by the Rust tests (or by
`tandem export retention`):

    {"name": "...",
     "a": {"durations": [...], "events": [true, ...]},
     "b": {"durations": [...], "events": [...]},
     "confidence": 0.95,
     "curves": {"LOG_LOG": {"a": CURVE, "b": CURVE}, "LOG": ..., "PLAIN": ...},
     "log_rank": {"statistic": x, "p_value": p} or null}

    CURVE = {"points": [{"time", "at_risk", "events", "censored", "survival",
                         "lower", "upper"}, ...], "median": t or null}

lifelines computes the curve, the table and the log-log interval itself. It
has no LOG or PLAIN interval, so those are built here from lifelines'
survival function and Greenwood sum (`_cumulative_sq_`) with R survival's
formulas: LOG = S * exp(-/+ z se), upper capped at 1; PLAIN = S -/+ z S se,
clipped to [0, 1]. Every number must agree to 1e-9 (absolute, or relative
for large values). Exits 1 listing every difference.
"""

import json
import math
import sys
import warnings

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import norm

TOLERANCE = 1e-9
failures = []


def close(x, y):
    if x is None or y is None:
        return x is None and y is None
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= TOLERANCE * max(1.0, abs(x), abs(y))


def expect(case, what, ours, theirs):
    if not close(ours, theirs):
        failures.append(f"{case}: {what}: tandem {ours!r} != lifelines {theirs!r}")


def reference(durations, events, transform, confidence):
    """lifelines' curve as rows of (time, at_risk, events, censored, S, lower, upper), and the median."""
    kmf = KaplanMeierFitter(alpha=1 - confidence)
    kmf.fit(np.asarray(durations, dtype=float), np.asarray(events, dtype=bool))
    table = kmf.event_table
    s = kmf.survival_function_.iloc[:, 0].to_numpy()
    var = kmf._cumulative_sq_.to_numpy()
    z = norm.ppf(0.5 + confidence / 2)
    if transform == "LOG_LOG":
        lower = kmf.confidence_interval_.iloc[:, 0].to_numpy()
        upper = kmf.confidence_interval_.iloc[:, 1].to_numpy()
    elif transform == "LOG":
        se = np.sqrt(var)
        lower = s * np.exp(-z * se)
        upper = np.minimum(1.0, s * np.exp(z * se))
    elif transform == "PLAIN":
        se = np.sqrt(var)
        lower = np.maximum(0.0, s - z * s * se)
        upper = np.minimum(1.0, s + z * s * se)
    else:
        raise ValueError(transform)
    rows = []
    for i, t in enumerate(kmf.survival_function_.index):
        r = table.loc[t]
        rows.append((float(t), int(r["at_risk"]), int(r["observed"]), int(r["censored"]), s[i], lower[i], upper[i]))
    median = kmf.median_survival_time_
    return rows, (None if math.isinf(median) else float(median))


def check_curve(case, label, group, curve, transform, confidence):
    name = f"{case} [{label}, {transform}]"
    if not group["durations"]:
        # lifelines refuses an empty sample; Tandem answers with no points.
        if curve["points"] or curve["median"] is not None:
            failures.append(f"{name}: an empty group must give no points and no median")
        return
    rows, median = reference(group["durations"], group["events"], transform, confidence)
    points = curve["points"]
    if len(points) != len(rows):
        failures.append(f"{name}: {len(points)} points, lifelines has {len(rows)}")
        return
    for p, (t, n, d, c, s, lo, hi) in zip(points, rows):
        at = f"t={t}"
        expect(name, f"{at} time", p["time"], t)
        expect(name, f"{at} at_risk", p["at_risk"], n)
        expect(name, f"{at} events", p["events"], d)
        expect(name, f"{at} censored", p["censored"], c)
        expect(name, f"{at} survival", p["survival"], s)
        expect(name, f"{at} lower", p["lower"], lo)
        expect(name, f"{at} upper", p["upper"], hi)
    expect(name, "median", curve["median"], median)


def check_log_rank(case, a, b, ours):
    if not a["durations"] or not b["durations"]:
        # lifelines gives p = nan (nothing to compare); Tandem gives no test.
        if ours is not None:
            failures.append(f"{case}: log-rank with an empty group must be null")
        return
    r = logrank_test(a["durations"], b["durations"], a["events"], b["events"])
    if ours is None:
        failures.append(f"{case}: log-rank missing")
        return
    expect(case, "log-rank statistic", ours["statistic"], float(r.test_statistic))
    expect(case, "log-rank p-value", ours["p_value"], float(r.p_value))


def main(path):
    warnings.simplefilter("ignore")
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    if not cases:
        print("error: no cases to check", file=sys.stderr)
        return 1
    checked = 0
    for case in cases:
        name = case["name"]
        confidence = case.get("confidence", 0.95)
        for transform, curves in case["curves"].items():
            for label in ("a", "b"):
                if label in curves:
                    check_curve(name, label, case[label], curves[label], transform, confidence)
                    checked += 1
        if "log_rank" in case:
            check_log_rank(name, case["a"], case["b"], case["log_rank"])
            checked += 1
    for f in failures:
        print(f, file=sys.stderr)
    print(f"checked {checked} curves and tests of {len(cases)} cases against lifelines: "
          f"{len(failures)} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
