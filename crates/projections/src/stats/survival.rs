//! Kaplan–Meier survival curves and the log-rank test, pure and small.
//!
//! The numbers follow Python's `lifelines` (checked against it to 1e-9 by
//! `analysis/check_survival.py`), so a study can move between the two:
//!
//! - The curve has one point per distinct time of the sample, plus time 0
//!   (lifelines' timeline starts at `min(0, first time)`). At each point:
//!   `at_risk` (still observed just before it), `events`, `censored`.
//! - Survival is `exp(Σ log((n - d) / n))`, the product-limit estimate
//!   computed in logs as lifelines does; Greenwood's sum `Σ d / (n (n - d))`
//!   is the variance of `log S`. A step where everyone at risk has the
//!   event adds 0 to the sum (lifelines replaces the infinite term by 0).
//! - Confidence intervals, at level `confidence` with `z = Φ⁻¹((1 + c) / 2)`:
//!   - [`CiTransform::LogLog`] (the default; lifelines' only interval, the
//!     "exponential Greenwood" one): `exp(-exp(log(-log S) ∓ z √V / log S))`,
//!     and `[1, 1]` where `S = 1`;
//!   - [`CiTransform::Log`] (R survival's default, `conf.type = "log"`):
//!     `S · exp(∓ z √V)`, capped at 1;
//!   - [`CiTransform::Plain`]: `S ∓ z S √V`, clipped to `[0, 1]`.
//! - The median survival time is the first time where `S ≤ 0.5`; `None`
//!   when the curve never gets there (lifelines says `inf`).
//! - The log-rank test compares the observed events of group A with those
//!   expected under one common hazard: `U = (O_A − E_A)² / V` with the
//!   hypergeometric variance `V = Σ n_A n_B d (n − d) / (n² (n − 1))`
//!   (the factor `(n − d)/(n − 1)` taken as 1 when `n = 1`), and the
//!   p-value from the chi-square distribution with 1 degree of freedom.
//!   When `V = 0` (nobody had an event, or nothing was comparable) the
//!   statistic is 0 and the p-value 1, as in lifelines. With an empty group
//!   there is nothing to compare and the test is `None`.

use crate::error::ProjectionError;

/// One subject: how long they were observed, and whether the observation
/// ended with the event (here: leaving the organisation) or was censored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Time from the subject's origin, in any unit (Tandem uses days).
    pub duration: f64,
    /// `true` for the event, `false` for censoring.
    pub event: bool,
}

/// How the confidence interval of the survival curve is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CiTransform {
    /// On `log(-log S)`, as lifelines does; stays inside `[0, 1]`.
    #[default]
    LogLog,
    /// On `log S`, as R's `survfit` does by default.
    Log,
    /// On `S` itself (the textbook Greenwood interval), clipped.
    Plain,
}

/// One step of a Kaplan–Meier curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurvivalPoint {
    pub time: f64,
    /// Subjects still observed just before `time`.
    pub at_risk: u64,
    /// Events at `time`.
    pub events: u64,
    /// Censored at `time`.
    pub censored: u64,
    /// The estimate of `S(time)`.
    pub survival: f64,
    /// Greenwood's sum up to `time`: the variance of `log S`.
    pub variance: f64,
    pub lower: f64,
    pub upper: f64,
}

/// A Kaplan–Meier curve.
#[derive(Clone, Debug, PartialEq)]
pub struct KaplanMeier {
    pub points: Vec<SurvivalPoint>,
    /// First time with `S ≤ 0.5`; `None` if never reached (or no subject).
    pub median: Option<f64>,
    pub transform: CiTransform,
    pub confidence: f64,
}

/// The result of a two-group log-rank test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogRank {
    /// The chi-square statistic `U`.
    pub statistic: f64,
    pub p_value: f64,
    pub degrees_of_freedom: u32,
    /// Events observed in group A and group B.
    pub observed: [u64; 2],
    /// Events expected in group A and group B under a common hazard.
    pub expected: [f64; 2],
}

fn check(observations: &[Observation]) -> Result<(), ProjectionError> {
    for o in observations {
        if !o.duration.is_finite() || o.duration < 0.0 {
            return Err(ProjectionError::InvalidStudy {
                field: "duration",
                reason: format!("a duration must be a finite number of at least 0, got {}", o.duration),
            });
        }
    }
    Ok(())
}

/// The distinct times of the sample (with 0 first), and per time the
/// events and censorings in each group. `groups[i]` says which group
/// observation `i` belongs to.
struct Table {
    times: Vec<f64>,
    /// `removed[g][t]`, `events[g][t]`.
    removed: Vec<Vec<u64>>,
    events: Vec<Vec<u64>>,
}

fn table(samples: &[&[Observation]]) -> Table {
    let mut all: Vec<(f64, usize, bool)> =
        samples.iter().enumerate().flat_map(|(g, s)| s.iter().map(move |o| (o.duration, g, o.event))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut times = vec![0.0];
    for (t, _, _) in &all {
        if times.last().is_none_or(|last| *last < *t) {
            times.push(*t);
        }
    }
    let mut removed = vec![vec![0u64; times.len()]; samples.len()];
    let mut events = vec![vec![0u64; times.len()]; samples.len()];
    let mut at = 0;
    for (t, g, e) in all {
        while times[at] < t {
            at += 1;
        }
        removed[g][at] += 1;
        if e {
            events[g][at] += 1;
        }
    }
    Table { times, removed, events }
}

/// The standard normal quantile for a two-sided interval at `confidence`.
fn z_for(confidence: f64) -> Result<f64, ProjectionError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(ProjectionError::InvalidStudy {
            field: "confidence",
            reason: format!("must lie strictly between 0 and 1, got {confidence}"),
        });
    }
    Ok(normal_quantile(0.5 + confidence / 2.0))
}

/// The Kaplan–Meier estimate of `observations`, with a confidence interval
/// at `confidence` (e.g. 0.95) built with `transform`.
pub fn kaplan_meier(
    observations: &[Observation],
    transform: CiTransform,
    confidence: f64,
) -> Result<KaplanMeier, ProjectionError> {
    check(observations)?;
    let z = z_for(confidence)?;
    if observations.is_empty() {
        return Ok(KaplanMeier { points: Vec::new(), median: None, transform, confidence });
    }
    let t = table(&[observations]);
    let mut at_risk = observations.len() as u64;
    let (mut log_s, mut variance) = (0.0f64, 0.0f64);
    let mut points = Vec::with_capacity(t.times.len());
    for (i, &time) in t.times.iter().enumerate() {
        let (removed, d) = (t.removed[0][i], t.events[0][i]);
        let (n, df) = (at_risk as f64, d as f64);
        if d > 0 {
            log_s += (n - df).ln() - n.ln();
            if d < at_risk {
                variance += df / (n * (n - df));
            }
        }
        let survival = log_s.exp();
        let (lower, upper) = interval(survival, variance, z, transform);
        points.push(SurvivalPoint {
            time,
            at_risk,
            events: d,
            censored: removed - d,
            survival,
            variance,
            lower,
            upper,
        });
        at_risk -= removed;
    }
    let median = points.iter().find(|p| p.survival <= 0.5).map(|p| p.time);
    Ok(KaplanMeier { points, median, transform, confidence })
}

fn interval(s: f64, variance: f64, z: f64, transform: CiTransform) -> (f64, f64) {
    let se = variance.sqrt();
    match transform {
        CiTransform::LogLog => {
            if s >= 1.0 {
                return (1.0, 1.0);
            }
            if s <= 0.0 {
                return (0.0, 0.0);
            }
            let v = s.ln();
            let lower = (-((-v).ln() - z * se / v).exp()).exp();
            let upper = (-((-v).ln() + z * se / v).exp()).exp();
            (lower, upper)
        }
        CiTransform::Log => (s * (-z * se).exp(), (s * (z * se).exp()).min(1.0)),
        CiTransform::Plain => ((s - z * s * se).max(0.0), (s + z * s * se).min(1.0)),
    }
}

/// The log-rank test of group `a` against group `b`; `None` when either
/// group is empty.
pub fn log_rank(a: &[Observation], b: &[Observation]) -> Result<Option<LogRank>, ProjectionError> {
    check(a)?;
    check(b)?;
    if a.is_empty() || b.is_empty() {
        return Ok(None);
    }
    let t = table(&[a, b]);
    let (mut n_a, mut n_b) = (a.len() as u64, b.len() as u64);
    let (mut expected_a, mut expected_b, mut var) = (0.0f64, 0.0f64, 0.0f64);
    let (mut observed_a, mut observed_b) = (0u64, 0u64);
    for i in 0..t.times.len() {
        let (d_a, d_b) = (t.events[0][i], t.events[1][i]);
        let d = (d_a + d_b) as f64;
        let n = (n_a + n_b) as f64;
        if d > 0.0 && n > 0.0 {
            expected_a += n_a as f64 * d / n;
            expected_b += n_b as f64 * d / n;
            let ratio = if n > 1.0 { (n - d) / (n - 1.0) } else { 1.0 };
            var += n_a as f64 * n_b as f64 * ratio * d / (n * n);
        }
        observed_a += d_a;
        observed_b += d_b;
        n_a -= t.removed[0][i];
        n_b -= t.removed[1][i];
    }
    let z = observed_a as f64 - expected_a;
    // lifelines takes the pseudo-inverse of V: 0 when V is 0.
    let statistic = if var > 0.0 { z * z / var } else { 0.0 };
    let p_value = chi_square_sf(statistic, 1);
    Ok(Some(LogRank {
        statistic,
        p_value,
        degrees_of_freedom: 1,
        observed: [observed_a, observed_b],
        expected: [expected_a, expected_b],
    }))
}

/// `P(X > x)` for a chi-square variable with `k` degrees of freedom: the
/// regularized upper incomplete gamma function `Q(k/2, x/2)`.
#[must_use]
pub fn chi_square_sf(x: f64, k: u32) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    upper_gamma_regularized(f64::from(k) / 2.0, x / 2.0)
}

/// `ln Γ(a)` for `a > 0` (Lanczos, g = 7, nine terms; about 15 digits).
fn ln_gamma(a: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if a < 0.5 {
        // Reflection keeps the series in its accurate range.
        return (std::f64::consts::PI / (std::f64::consts::PI * a).sin()).ln() - ln_gamma(1.0 - a);
    }
    let a = a - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (a + i as f64);
    }
    let t = a + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (a + 0.5) * t.ln() - t + sum.ln()
}

/// `Q(a, x) = Γ(a, x) / Γ(a)`: a series for `x < a + 1`, a continued
/// fraction (modified Lentz) otherwise, each to full double precision.
fn upper_gamma_regularized(a: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    const MAX_ITER: usize = 10_000;
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..MAX_ITER {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        1.0 - sum * log_prefix.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        log_prefix.exp() * h
    }
}

/// The standard normal quantile `Φ⁻¹(p)` for `0 < p < 1`: Acklam's
/// rational approximation refined by one Halley step on `erfc`, which
/// brings it to full double precision.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let low = 0.024_25;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // Halley refinement: e = Φ(x) − p with Φ(x) = erfc(−x/√2)/2.
    let mut x = x;
    for _ in 0..2 {
        let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// The complementary error function, from the incomplete gamma function:
/// `erfc(x) = Q(1/2, x²)` for `x ≥ 0`, and `2 − erfc(−x)` below.
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x == 0.0 {
        1.0
    } else {
        upper_gamma_regularized(0.5, x * x)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn obs(v: &[(f64, bool)]) -> Vec<Observation> {
        v.iter().map(|&(duration, event)| Observation { duration, event }).collect()
    }

    #[test]
    fn the_normal_quantile_and_chi_square_tail_are_exact_to_double_precision() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((normal_quantile(0.5)).abs() < 1e-15);
        assert!((normal_quantile(0.995) - 2.575_829_303_548_900_4).abs() < 1e-13);
        // chi2.sf(3.841458820694124, 1) = 0.05 (scipy).
        assert!((chi_square_sf(3.841_458_820_694_124, 1) - 0.05).abs() < 1e-14);
        assert!((chi_square_sf(0.5, 1) - 0.479_500_122_186_953_5).abs() < 1e-14);
        assert!((chi_square_sf(40.0, 1) - 2.539_628_589_470_836e-10).abs() < 1e-22);
    }

    #[test]
    fn a_textbook_curve() {
        // Ties at 3 (an event and a censoring), censoring at 5.
        let km = kaplan_meier(
            &obs(&[(1.0, true), (3.0, true), (3.0, false), (5.0, false), (7.0, true)]),
            CiTransform::LogLog,
            0.95,
        )
        .unwrap();
        let times: Vec<f64> = km.points.iter().map(|p| p.time).collect();
        assert_eq!(times, [0.0, 1.0, 3.0, 5.0, 7.0]);
        let s: Vec<f64> = km.points.iter().map(|p| p.survival).collect();
        let expect = [1.0, 0.8, 0.8 * 0.75, 0.6, 0.0];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{s:?}");
        }
        assert_eq!(km.points[2].at_risk, 4);
        assert_eq!(km.points[2].censored, 1);
        assert_eq!(km.median, Some(7.0));
        assert_eq!((km.points[0].lower, km.points[0].upper), (1.0, 1.0));
    }

    #[test]
    fn edge_cases_are_defined() {
        let none = kaplan_meier(&[], CiTransform::Log, 0.95).unwrap();
        assert!(none.points.is_empty() && none.median.is_none());
        let censored = kaplan_meier(&obs(&[(2.0, false), (4.0, false)]), CiTransform::Plain, 0.95).unwrap();
        assert!(censored.points.iter().all(|p| p.survival == 1.0 && p.lower == 1.0 && p.upper == 1.0));
        assert!(censored.median.is_none());
        assert!(kaplan_meier(&obs(&[(-1.0, true)]), CiTransform::LogLog, 0.95).is_err());
        assert!(kaplan_meier(&obs(&[(f64::NAN, true)]), CiTransform::LogLog, 0.95).is_err());
        assert!(kaplan_meier(&obs(&[(1.0, true)]), CiTransform::LogLog, 1.0).is_err());
        assert!(log_rank(&obs(&[(1.0, true)]), &[]).unwrap().is_none());
        let all_censored = log_rank(&obs(&[(1.0, false)]), &obs(&[(2.0, false)])).unwrap().unwrap();
        assert_eq!((all_censored.statistic, all_censored.p_value), (0.0, 1.0));
    }

    #[test]
    fn log_rank_of_a_known_example() {
        // Group A dies early, B late: a clear difference.
        let a = obs(&[(1.0, true), (2.0, true), (3.0, true), (4.0, true)]);
        let b = obs(&[(5.0, true), (6.0, true), (7.0, true), (8.0, true)]);
        let r = log_rank(&a, &b).unwrap().unwrap();
        assert_eq!(r.observed, [4, 4]);
        assert!((r.expected[0] + r.expected[1] - 8.0).abs() < 1e-12);
        assert!(r.statistic > 5.0 && r.p_value < 0.05, "{r:?}");
    }
}
