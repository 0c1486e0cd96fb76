//! Program statistics against an independent recount in Rust from the
//! domain events of the same history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use tandem_commands::CommandService;
use tandem_domain::pair::PairEvent;
use tandem_domain::program::ProgramEvent;
use tandem_domain::{DomainEvent, ProgramId};
use tandem_projections::{ProgramStats, Projections, program_stats};
use uuid::Uuid;

use crate::support::history::{Scale, generate};
use crate::support::{all_events, caught_up, day, fast};

#[derive(Default)]
struct Pair {
    program: Uuid,
    members: Vec<Uuid>,
    formed_on: Option<NaiveDate>,
    dissolved_on: Option<NaiveDate>,
    sessions: Vec<DateTime<Utc>>,
}

/// An enrolment period: enrolled on, withdrew on.
type Period = (NaiveDate, Option<NaiveDate>);

#[derive(Default)]
struct Model {
    /// (program, person) -> enrolment periods.
    periods: BTreeMap<(Uuid, Uuid), Vec<Period>>,
    pairs: BTreeMap<Uuid, Pair>,
    /// goal -> (program, set_on, completed_on)
    goals: HashMap<Uuid, (Uuid, NaiveDate, Option<NaiveDate>)>,
}

impl Model {
    fn from(events: &[DomainEvent]) -> Self {
        let mut m = Model::default();
        for e in events {
            match e {
                DomainEvent::Program(ProgramEvent::ParticipantEnrolled(x)) => m
                    .periods
                    .entry((x.program_id.as_uuid(), x.person_id.as_uuid()))
                    .or_default()
                    .push((x.enrolled_on, None)),
                DomainEvent::Program(ProgramEvent::ParticipantWithdrew(x)) => {
                    if let Some(last) =
                        m.periods.get_mut(&(x.program_id.as_uuid(), x.person_id.as_uuid())).and_then(|p| p.last_mut())
                    {
                        last.1 = Some(x.withdrew_on);
                    }
                }
                DomainEvent::Pair(PairEvent::PairFormed(f)) => {
                    let p = m.pairs.entry(f.pair_id.as_uuid()).or_default();
                    p.program = f.program_id.as_uuid();
                    p.members = f.members.iter().map(|x| x.as_uuid()).collect();
                    p.formed_on = Some(f.formed_on);
                }
                DomainEvent::Pair(PairEvent::PairDissolved(d)) => {
                    m.pairs.entry(d.pair_id.as_uuid()).or_default().dissolved_on = Some(d.dissolved_on);
                }
                DomainEvent::Pair(PairEvent::SessionHeld(s)) => {
                    m.pairs.entry(s.pair_id.as_uuid()).or_default().sessions.push(s.held_at);
                }
                DomainEvent::Pair(PairEvent::GoalSet(g)) => {
                    let program = m.pairs.get(&g.pair_id.as_uuid()).map(|p| p.program).expect("pair of goal");
                    m.goals.insert(g.goal_id.as_uuid(), (program, g.set_on, None));
                }
                DomainEvent::Pair(PairEvent::GoalCompleted(g)) => {
                    if let Some(goal) = m.goals.get_mut(&g.goal_id.as_uuid()) {
                        goal.2 = Some(g.completed_on);
                    }
                }
                _ => {}
            }
        }
        m
    }

    fn stats(&self, program: Uuid, d: NaiveDate) -> ProgramStats {
        let current = |p: &Pair| p.dissolved_on.is_none_or(|x| x > d);
        let enrolled: BTreeSet<Uuid> = self
            .periods
            .iter()
            .filter(|((prog, _), periods)| {
                *prog == program && periods.iter().any(|(from, to)| *from <= d && to.is_none_or(|t| t > d))
            })
            .map(|((_, person), _)| *person)
            .collect();
        let formed: Vec<&Pair> =
            self.pairs.values().filter(|p| p.program == program && p.formed_on.is_some_and(|f| f <= d)).collect();
        let ever: BTreeSet<Uuid> = formed.iter().flat_map(|p| p.members.iter().copied()).collect();
        let now: BTreeSet<Uuid> =
            formed.iter().filter(|p| current(p)).flat_map(|p| p.members.iter().copied()).collect();
        let matched = enrolled.intersection(&ever).count() as i64;
        let window_start = d - chrono::Days::new(29);
        let active = formed
            .iter()
            .filter(|p| current(p) && p.sessions.iter().any(|s| (window_start..=d).contains(&s.date_naive())))
            .count() as i64;
        let program_pairs: Vec<&Pair> = self.pairs.values().filter(|p| p.program == program).collect();
        let sessions_held =
            program_pairs.iter().flat_map(|p| &p.sessions).filter(|s| s.date_naive() <= d).count() as i64;
        let goals_set = self.goals.values().filter(|g| g.0 == program && g.1 <= d).count() as i64;
        let goals_completed =
            self.goals.values().filter(|g| g.0 == program && g.2.is_some_and(|c| c <= d)).count() as i64;

        // Days from first enrolment to first pair, per person first paired by D.
        let mut to_pair = Vec::new();
        let people: BTreeSet<Uuid> = program_pairs.iter().flat_map(|p| p.members.iter().copied()).collect();
        for person in people {
            let first_pair = program_pairs
                .iter()
                .filter(|p| p.members.contains(&person))
                .filter_map(|p| p.formed_on)
                .min()
                .expect("paired");
            let first_enrolment = self.periods.get(&(program, person)).and_then(|ps| ps.iter().map(|p| p.0).min());
            if let (true, Some(e)) = (first_pair <= d, first_enrolment) {
                to_pair.push((first_pair - e).num_days() as f64);
            }
        }
        let mut to_session = Vec::new();
        for p in &formed {
            if let Some(first) = p.sessions.iter().min().map(DateTime::date_naive)
                && first <= d
            {
                to_session.push((first - p.formed_on.expect("formed")).num_days() as f64);
            }
        }
        ProgramStats {
            program_id: ProgramId::from_uuid(program),
            as_of: d,
            enrolled: enrolled.len() as i64,
            matched,
            currently_paired: enrolled.intersection(&now).count() as i64,
            match_rate: (!enrolled.is_empty()).then(|| matched as f64 / enrolled.len() as f64),
            pairs_formed: formed.len() as i64,
            current_pairs: formed.iter().filter(|p| current(p)).count() as i64,
            active_pairs: active,
            sessions_held,
            goals_set,
            goals_completed,
            median_days_enrolment_to_pair: median(to_pair),
            median_days_pair_to_first_session: median(to_session),
        }
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 })
}

#[sqlx::test(migrations = "../../migrations")]
async fn program_statistics_match_an_independent_recount(pool: PgPool) {
    let svc = CommandService::from_pool(pool.clone());
    let history =
        generate(&svc, 1234, Scale { people: 60, programs: 4, enrol: 0.4, max_sessions: 6, concurrency: 6 }).await;
    let runner = Projections::new(pool.clone()).options(fast()).spawn().expect("spawn");
    caught_up(&pool, &["programs", "pairs", "participation"]).await;

    let events: Vec<DomainEvent> = all_events(&pool).await.into_iter().map(|(_, e)| e).collect();
    let model = Model::from(&events);
    let mut checked = 0;
    for program in &history.programs {
        for as_of in
            [day(2023, 2, 15), day(2023, 4, 30), day(2023, 7, 31), day(2023, 12, 31), day(2024, 6, 30), day(2025, 1, 1)]
        {
            let got = program_stats(&pool, *program, as_of).await.expect("stats");
            let want = model.stats(program.as_uuid(), as_of);
            assert_eq!(
                (got.enrolled, got.matched, got.currently_paired, got.pairs_formed, got.current_pairs),
                (want.enrolled, want.matched, want.currently_paired, want.pairs_formed, want.current_pairs),
                "head counts of {program} on {as_of}"
            );
            assert_eq!(
                (got.active_pairs, got.sessions_held, got.goals_set, got.goals_completed),
                (want.active_pairs, want.sessions_held, want.goals_set, want.goals_completed),
                "activity of {program} on {as_of}"
            );
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            };
            assert!(close(got.match_rate, want.match_rate), "match rate {got:?} vs {want:?}");
            assert!(
                close(got.median_days_enrolment_to_pair, want.median_days_enrolment_to_pair),
                "median to pair {got:?} vs {want:?}"
            );
            assert!(
                close(got.median_days_pair_to_first_session, want.median_days_pair_to_first_session),
                "median to first session {got:?} vs {want:?}"
            );
            checked += usize::from(got.sessions_held > 0);
        }
    }
    assert!(checked >= 6, "the history exercises the statistics");
    let active: i64 = {
        let mut n = 0;
        for program in &history.programs {
            n += program_stats(&pool, *program, day(2023, 7, 31)).await.expect("stats").active_pairs;
        }
        n
    };
    assert!(active > 0, "some pairs are active");
    runner.shutdown().await;
}
