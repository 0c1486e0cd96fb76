//! What a run measured: one [`Figure`] per line, each beside its baseline
//! (raw PostgreSQL doing the same work in the same run) with the ratio and
//! the goal it is held against.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

/// A measured amount and what it counts.
#[derive(Clone, Debug, Serialize)]
pub struct Amount {
    pub value: f64,
    /// e.g. "cmd/s", "events/s", "ms".
    pub unit: &'static str,
}

impl Amount {
    #[must_use]
    pub fn per_second(count: u64, elapsed: Duration, unit: &'static str) -> Self {
        Self { value: count as f64 / elapsed.as_secs_f64().max(1e-9), unit }
    }

    #[must_use]
    pub fn millis(d: Duration) -> Self {
        Self { value: d.as_secs_f64() * 1000.0, unit: "ms" }
    }

    #[must_use]
    pub fn mebibytes(bytes: u64) -> Self {
        Self { value: bytes as f64 / (1024.0 * 1024.0), unit: "MiB" }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        if v >= 1000.0 {
            // Thousands separators for rates.
            let s = format!("{v:.0}");
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            write!(f, "{out} {}", self.unit)
        } else if v >= 10.0 {
            write!(f, "{v:.1} {}", self.unit)
        } else {
            write!(f, "{v:.2} {}", self.unit)
        }
    }
}

/// The target a figure is held against.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "limit")]
pub enum Goal {
    /// ours / baseline must be at least this (throughputs).
    RatioAtLeast(f64),
    /// ours / baseline must be at most this (latencies).
    RatioAtMost(f64),
    /// ours must be at most this, in its own unit (absolute latency, memory).
    AtMost(f64),
    /// ours must be at least this, in its own unit (absolute throughput).
    AtLeast(f64),
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RatioAtLeast(r) => write!(f, "≥ {r:.1}×"),
            Self::RatioAtMost(r) => write!(f, "≤ {r:.1}×"),
            Self::AtMost(v) => write!(f, "≤ {v}"),
            Self::AtLeast(v) => write!(f, "≥ {v}"),
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Which of the suite's parts measured it (append, mutation, read-all,
    /// replay, query, subscriptions).
    pub part: &'static str,
    pub label: String,
    pub ours: Amount,
    pub baseline: Option<Amount>,
    pub goal: Option<Goal>,
    /// Anything a reader needs to interpret the figure (sizes, counts).
    pub note: Option<String>,
}

impl Figure {
    #[must_use]
    pub fn new(part: &'static str, label: impl Into<String>, ours: Amount) -> Self {
        Self { part, label: label.into(), ours, baseline: None, goal: None, note: None }
    }

    #[must_use]
    pub fn against(mut self, baseline: Amount) -> Self {
        self.baseline = Some(baseline);
        self
    }

    #[must_use]
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self
    }

    /// Sets the goal when `applies`.
    #[must_use]
    pub fn goal_if(self, applies: bool, goal: Goal) -> Self {
        if applies { self.goal(goal) } else { self }
    }

    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// ours / baseline.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().filter(|b| b.value > 0.0).map(|b| self.ours.value / b.value)
    }

    /// Whether the goal is met; `None` without a goal.
    #[must_use]
    pub fn met(&self) -> Option<bool> {
        match self.goal? {
            Goal::RatioAtLeast(r) => self.ratio().map(|x| x >= r),
            Goal::RatioAtMost(r) => self.ratio().map(|x| x <= r),
            Goal::AtMost(v) => Some(self.ours.value <= v),
            Goal::AtLeast(v) => Some(self.ours.value >= v),
        }
    }
}

/// Every figure of a run, with what it ran on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub environment: Vec<(String, String)>,
}

impl Report {
    pub fn push(&mut self, figure: Figure) {
        println!("{}", Self::line(&figure));
        self.figures.push(figure);
    }

    fn line(f: &Figure) -> String {
        let baseline = f.baseline.as_ref().map_or_else(|| "—".to_owned(), ToString::to_string);
        let ratio = f.ratio().map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
        let goal = match (f.goal, f.met()) {
            (Some(g), Some(true)) => format!("{g} met"),
            (Some(g), Some(false)) => format!("{g} MISSED"),
            _ => "—".to_owned(),
        };
        let mut s = format!("{:<14} {:<44} {:>18} {:>18} {:>8}  {}", f.part, f.label, f.ours, baseline, ratio, goal);
        if let Some(n) = &f.note {
            let _ = write!(s, "  ({n})");
        }
        s
    }

    /// Every figure that has a goal, as met or missed, after a count: the
    /// closing lines of a run.
    #[must_use]
    pub fn goals(&self) -> Vec<String> {
        let with_goal: Vec<&Figure> = self.figures.iter().filter(|f| f.goal.is_some()).collect();
        let met = with_goal.iter().filter(|f| f.met() == Some(true)).count();
        let mut lines = vec![format!("goals: {met} of {} met", with_goal.len())];
        for f in with_goal {
            let (Some(goal), verdict) = (f.goal, if f.met() == Some(true) { "met" } else { "MISSED" }) else {
                continue;
            };
            let value = f.ratio().map_or_else(|| f.ours.to_string(), |r| format!("{r:.2}×"));
            lines.push(format!("  {verdict:<6} {} {}: {value} (goal {goal})", f.part, f.label));
        }
        lines
    }

    /// The whole report as a Markdown table.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.environment {
            let _ = writeln!(s, "- **{k}:** {v}");
        }
        s.push_str("\n| part | figure | Tandem | raw PostgreSQL | ratio | goal | notes |\n");
        s.push_str("|---|---|---:|---:|---:|---|---|\n");
        for f in &self.figures {
            let baseline = f.baseline.as_ref().map_or_else(|| "—".to_owned(), ToString::to_string);
            let ratio = f.ratio().map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
            let goal = match (f.goal, f.met()) {
                (Some(g), Some(true)) => format!("{g} met"),
                (Some(g), Some(false)) => format!("{g} **missed**"),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.part,
                f.label,
                f.ours,
                baseline,
                ratio,
                goal,
                f.note.as_deref().unwrap_or("")
            );
        }
        s
    }
}

/// Latency samples of one measurement.
#[derive(Clone, Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub fn record(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0–100), nearest rank; zero without samples.
    #[must_use]
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Duration::from_millis(50));
        assert_eq!(l.percentile(99.0), Duration::from_millis(99));
        assert_eq!(l.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn goals_compare_the_ratio_or_the_value() {
        let f = Figure::new("append", "x", Amount { value: 80.0, unit: "cmd/s" })
            .against(Amount { value: 100.0, unit: "ins/s" })
            .goal(Goal::RatioAtLeast(1.0));
        assert_eq!(f.met(), Some(false));
        let f = Figure::new("subs", "p99", Amount { value: 20.0, unit: "ms" }).goal(Goal::AtMost(50.0));
        assert_eq!(f.met(), Some(true));
        assert_eq!(Amount { value: 12345.6, unit: "cmd/s" }.to_string(), "12,346 cmd/s");
    }

    #[test]
    fn goals_list_every_figure_with_a_goal() {
        let mut r = Report::default();
        r.figures.push(
            Figure::new("append", "a", Amount { value: 80.0, unit: "cmd/s" })
                .against(Amount { value: 100.0, unit: "ins/s" })
                .goal(Goal::RatioAtLeast(1.0)),
        );
        r.figures.push(Figure::new("stall", "b", Amount { value: 5.0, unit: "ms" }).goal(Goal::AtMost(20.0)));
        r.figures.push(Figure::new("query", "c", Amount { value: 5.0, unit: "ms" }));
        let lines = r.goals();
        assert_eq!(lines[0], "goals: 1 of 2 met");
        assert!(lines[1].starts_with("  MISSED append a: 0.80×"), "{}", lines[1]);
        assert!(lines[2].starts_with("  met    stall b: 5.00 ms"), "{}", lines[2]);
        assert_eq!(lines.len(), 3);
    }
}
