//! Kaplan–Meier and the log-rank test against Python's lifelines.
//!
//! Generated edge cases (ties, all censored, one person, an empty group,
//! everyone failing at once, events at time 0, another confidence level)
//! and seeded random samples are computed here for each interval transform
//! and written to a file; `analysis/check_survival.py` recomputes them
//! with lifelines (in the venv that `analysis/venv.sh` creates under
//! `target/`) and fails on any difference over 1e-9. Without Python the
//! test fails with the reason: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tandem_projections::stats::{CiTransform, KaplanMeier, Observation, kaplan_meier, log_rank};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interpreter of the analysis venv, created on first use.
pub fn analysis_python() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("analysis/venv.sh"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run analysis/venv.sh (bash is needed): {e}"));
    assert!(
        out.status.success(),
        "analysis/venv.sh failed; the lifelines check needs Python 3 with venv and pip:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn obs(v: &[(f64, bool)]) -> Vec<Observation> {
    v.iter().map(|&(duration, event)| Observation { duration, event }).collect()
}

/// A small seeded generator, so the random cases are the same every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn sample(&mut self, n: usize, max: f64, integer: bool, censor_share: f64) -> Vec<Observation> {
        (0..n)
            .map(|_| {
                let d = self.next() * max;
                Observation { duration: if integer { d.floor() } else { d }, event: self.next() >= censor_share }
            })
            .collect()
    }
}

fn curve(km: &KaplanMeier) -> Value {
    json!({
        "points": km.points.iter().map(|p| json!({
            "time": p.time, "at_risk": p.at_risk, "events": p.events, "censored": p.censored,
            "survival": p.survival, "lower": p.lower, "upper": p.upper,
        })).collect::<Vec<_>>(),
        "median": km.median,
    })
}

fn group(o: &[Observation]) -> Value {
    json!({
        "durations": o.iter().map(|x| x.duration).collect::<Vec<_>>(),
        "events": o.iter().map(|x| x.event).collect::<Vec<_>>(),
    })
}

/// One case as `check_survival.py` reads it.
pub fn case(name: &str, a: &[Observation], b: &[Observation], confidence: f64) -> Value {
    let mut curves = serde_json::Map::new();
    for (label, t) in [("LOG_LOG", CiTransform::LogLog), ("LOG", CiTransform::Log), ("PLAIN", CiTransform::Plain)] {
        let ka = kaplan_meier(a, t, confidence).expect("valid sample");
        let kb = kaplan_meier(b, t, confidence).expect("valid sample");
        curves.insert(label.into(), json!({ "a": curve(&ka), "b": curve(&kb) }));
    }
    let lr = log_rank(a, b).expect("valid samples").map(|r| json!({ "statistic": r.statistic, "p_value": r.p_value }));
    json!({ "name": name, "a": group(a), "b": group(b), "confidence": confidence, "curves": curves, "log_rank": lr })
}

/// Runs `check_survival.py` on `cases`; panics with its report on a difference.
pub fn check_with_lifelines(cases: &[Value], file: &Path) {
    std::fs::write(file, serde_json::to_vec(cases).expect("json")).expect("write the cases");
    let out = Command::new(analysis_python())
        .arg(root().join("analysis/check_survival.py"))
        .arg(file)
        .output()
        .expect("run check_survival.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lifelines disagrees:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" 0 differences"), "unexpected report:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

#[test]
fn kaplan_meier_and_log_rank_equal_lifelines_on_edge_cases_and_random_samples() {
    let mut rng = Lcg(20_261_203);
    let textbook = obs(&[(1.0, true), (3.0, true), (3.0, false), (5.0, false), (7.0, true)]);
    let mut cases = vec![
        case(
            "ties within and across groups",
            &textbook,
            &obs(&[(3.0, true), (3.0, true), (5.0, true), (6.0, false)]),
            0.95,
        ),
        case(
            "all censored",
            &obs(&[(2.0, false), (4.0, false), (4.0, false)]),
            &obs(&[(1.0, false), (9.0, false)]),
            0.95,
        ),
        case("one person each", &obs(&[(4.0, true)]), &obs(&[(6.0, false)]), 0.95),
        case("one person against a group", &obs(&[(2.0, true)]), &textbook, 0.95),
        case("empty group", &textbook, &[], 0.95),
        case("both empty", &[], &[], 0.95),
        case("everyone fails at once", &obs(&[(5.0, true), (5.0, true), (5.0, true)]), &textbook, 0.95),
        case(
            "events and censoring at time 0",
            &obs(&[(0.0, true), (0.0, false), (2.0, true), (3.0, false)]),
            &textbook,
            0.95,
        ),
        case("last observation censored", &obs(&[(1.0, true), (2.0, true), (8.0, false)]), &obs(&[(8.0, false)]), 0.95),
        case("confidence 0.9", &textbook, &obs(&[(2.0, true), (4.0, true), (4.0, false), (8.0, true)]), 0.9),
        case("confidence 0.99", &textbook, &obs(&[(2.0, true), (4.0, true), (4.0, false), (8.0, true)]), 0.99),
    ];
    for i in 0..6 {
        let integer = i % 2 == 0;
        let a = rng.sample(40 + 60 * i, 365.0, integer, 0.3);
        let b = rng.sample(30 + 45 * i, 500.0, integer, 0.5);
        cases.push(case(
            &format!("random sample {i} ({})", if integer { "days, many ties" } else { "continuous" }),
            &a,
            &b,
            0.95,
        ));
    }
    let dir = root().join("target/analysis-checks");
    std::fs::create_dir_all(&dir).expect("create target/analysis-checks");
    check_with_lifelines(&cases, &dir.join("survival-cases.json"));
}
