//! The `pairs` projection: pairs and circles with their members, and
//! everything that happens in them: sessions (with who coached whom),
//! feedback, goals and their progress.
//!
//! Tables:
//! - `pairs`: status (ACTIVE / PAUSED / DISSOLVED) with the reasons, dates,
//!   and session figures (held count, first and last time held), which the
//!   statistics and the API's pair lists need without scanning sessions.
//! - `pair_members`: one row per member, for "the pairs of a person".
//! - `sessions`: SCHEDULED, HELD or CANCELLED, with what was planned and
//!   what happened; `session_coaching` says who coached whom in a session.
//! - `feedback`: ratings per trait (NULL when not rated), texts and the
//!   visibility the author chose. Filtering by visibility is the reader's
//!   job ([`FeedbackRow::readable_by`]).
//! - `goals` with status, latest percent and outcome dates;
//!   `goal_progress` holds every progress entry.
//!
//! `program_id` is copied onto sessions, feedback and goals so that
//! per-program figures need no join through `pairs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_domain::DomainEvent;
use tandem_domain::pair::{PairEvent, PairStatus};
use tandem_domain::values::{Activity, DissolveReason, FormedBy, GroupKind, Rating, Visibility};
use uuid::Uuid;

use crate::error::Result;
use crate::projection::{Envelope, ReadModel};
use crate::sql::{insert, replace, unjson};

/// The projection's name.
pub const NAME: &str = "pairs";

/// Keeps the pair, session, feedback and goal tables.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairsProjection;

const TABLES: &[&str] =
    &["pairs", "pair_members", "sessions", "session_coaching", "feedback", "goals", "goal_progress"];

const CREATE: &str = r"
CREATE TABLE pairs (
    pair_id           uuid PRIMARY KEY,
    program_id        uuid NOT NULL,
    kind              text NOT NULL,
    formed_by         text NOT NULL,
    match_score       double precision,
    formed_on         date NOT NULL,
    -- In the order the formation listed them.
    member_ids        uuid[] NOT NULL,
    status            text NOT NULL,
    paused_on         date,
    paused_until      date,
    pause_reason      text,
    resumed_on        date,
    dissolved_on      date,
    dissolve_reason   text,
    dissolve_note     text,
    sessions_held     integer NOT NULL,
    first_session_at  timestamptz,
    last_session_at   timestamptz,
    formed_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           integer NOT NULL
);
CREATE INDEX pairs_program_idx ON pairs (program_id, pair_id);

CREATE TABLE pair_members (
    pair_id     uuid NOT NULL,
    person_id   uuid NOT NULL,
    program_id  uuid NOT NULL,
    PRIMARY KEY (pair_id, person_id)
);
CREATE INDEX pair_members_person_idx ON pair_members (person_id, program_id);

CREATE TABLE sessions (
    session_id          uuid PRIMARY KEY,
    pair_id             uuid NOT NULL,
    program_id          uuid NOT NULL,
    -- SCHEDULED, HELD or CANCELLED.
    status              text NOT NULL,
    scheduled_by        uuid,
    scheduled_for       timestamptz,
    focus               text,
    held_at             timestamptz,
    minutes             integer,
    activities          text[] NOT NULL,
    -- Version of the closed activity list the activities come from.
    activities_version  integer,
    recorded_by         uuid,
    notes               text,
    cancelled_by        uuid,
    cancel_reason       text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX sessions_pair_idx ON sessions (pair_id);
CREATE INDEX sessions_program_held_idx ON sessions (program_id, held_at) WHERE status = 'HELD';

CREATE TABLE session_coaching (
    session_id  uuid NOT NULL,
    pair_id     uuid NOT NULL,
    coach_id    uuid NOT NULL,
    coachee_id  uuid NOT NULL,
    PRIMARY KEY (session_id, coach_id, coachee_id)
);
CREATE INDEX session_coaching_pair_idx ON session_coaching (pair_id);

CREATE TABLE feedback (
    feedback_id       uuid PRIMARY KEY,
    pair_id           uuid NOT NULL,
    program_id        uuid NOT NULL,
    session_id        uuid,
    from_id           uuid NOT NULL,
    to_id             uuid NOT NULL,
    -- 1..5 per trait of a good peer coach; NULL when not rated.
    empathy           smallint,
    active_listening  smallint,
    curiosity         smallint,
    patience          smallint,
    growth_mindset    smallint,
    strengths         text NOT NULL,
    improvements      text NOT NULL,
    visibility        text NOT NULL,
    given_at          timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL
);
CREATE INDEX feedback_pair_idx ON feedback (pair_id);
CREATE INDEX feedback_to_idx ON feedback (to_id);
CREATE INDEX feedback_from_idx ON feedback (from_id);

CREATE TABLE goals (
    goal_id                    uuid PRIMARY KEY,
    pair_id                    uuid NOT NULL,
    program_id                 uuid NOT NULL,
    owner_id                   uuid NOT NULL,
    title                      text NOT NULL,
    description                text NOT NULL,
    due_on                     date,
    accountability_partner_id  uuid,
    set_on                     date NOT NULL,
    -- OPEN, COMPLETED or ABANDONED.
    status                     text NOT NULL,
    -- The percent of the latest progress entry that had one.
    latest_percent             smallint,
    progress_entries           integer NOT NULL,
    completed_on               date,
    abandoned_on               date,
    -- The completion note or the reason for abandoning.
    outcome_note               text,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL
);
CREATE INDEX goals_pair_idx ON goals (pair_id);
CREATE INDEX goals_owner_idx ON goals (owner_id);
CREATE INDEX goals_program_idx ON goals (program_id);

CREATE TABLE goal_progress (
    goal_id      uuid NOT NULL,
    -- Stream version of the event: the recording order.
    seq          integer NOT NULL,
    pair_id      uuid NOT NULL,
    by_id        uuid NOT NULL,
    percent      smallint,
    note         text NOT NULL,
    recorded_on  date NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (goal_id, seq)
);
";

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    Scheduled,
    Held,
    Cancelled,
}

/// Where a goal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GoalStatus {
    Open,
    Completed,
    Abandoned,
}

/// A row of `pairs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub kind: GroupKind,
    pub formed_by: FormedBy,
    pub match_score: Option<f64>,
    pub formed_on: NaiveDate,
    pub member_ids: Vec<Uuid>,
    pub status: PairStatus,
    pub paused_on: Option<NaiveDate>,
    pub paused_until: Option<NaiveDate>,
    pub pause_reason: Option<String>,
    pub resumed_on: Option<NaiveDate>,
    pub dissolved_on: Option<NaiveDate>,
    pub dissolve_reason: Option<DissolveReason>,
    pub dissolve_note: Option<String>,
    pub sessions_held: i32,
    pub first_session_at: Option<DateTime<Utc>>,
    pub last_session_at: Option<DateTime<Utc>>,
    pub formed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// A row of `pair_members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct MemberRow {
    pair_id: Uuid,
    person_id: Uuid,
    program_id: Uuid,
}

/// Who coached whom in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoachingRow {
    pub session_id: Uuid,
    pub pair_id: Uuid,
    pub coach_id: Uuid,
    pub coachee_id: Uuid,
}

/// A row of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub status: SessionStatus,
    pub scheduled_by: Option<Uuid>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub focus: Option<String>,
    pub held_at: Option<DateTime<Utc>>,
    pub minutes: Option<i32>,
    pub activities: Vec<Activity>,
    pub activities_version: Option<i32>,
    pub recorded_by: Option<Uuid>,
    pub notes: Option<String>,
    pub cancelled_by: Option<Uuid>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `feedback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRow {
    pub feedback_id: Uuid,
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub session_id: Option<Uuid>,
    pub from_id: Uuid,
    pub to_id: Uuid,
    pub empathy: Option<i16>,
    pub active_listening: Option<i16>,
    pub curiosity: Option<i16>,
    pub patience: Option<i16>,
    pub growth_mindset: Option<i16>,
    pub strengths: String,
    pub improvements: String,
    pub visibility: Visibility,
    pub given_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl FeedbackRow {
    /// Whether `person` may read this feedback: its author always; the
    /// recipient when it is shared with them; a coordinator of the program
    /// (`coordinator` = true) when it is shared with coordinators.
    #[must_use]
    pub fn readable_by(&self, person: Option<Uuid>, coordinator: bool) -> bool {
        person == Some(self.from_id)
            || (person == Some(self.to_id) && self.visibility.shared_with_recipient())
            || (coordinator && self.visibility.shared_with_coordinators())
    }
}

/// A row of `goals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalRow {
    pub goal_id: Uuid,
    pub pair_id: Uuid,
    pub program_id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub description: String,
    pub due_on: Option<NaiveDate>,
    pub accountability_partner_id: Option<Uuid>,
    pub set_on: NaiveDate,
    pub status: GoalStatus,
    pub latest_percent: Option<i16>,
    pub progress_entries: i32,
    pub completed_on: Option<NaiveDate>,
    pub abandoned_on: Option<NaiveDate>,
    pub outcome_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `goal_progress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalProgressRow {
    pub goal_id: Uuid,
    pub seq: i32,
    pub pair_id: Uuid,
    pub by_id: Uuid,
    pub percent: Option<i16>,
    pub note: String,
    pub recorded_on: NaiveDate,
    pub recorded_at: DateTime<Utc>,
}

impl ReadModel for PairsProjection {
    const NAME: &'static str = NAME;
    // 2: free text blanked on erasure.
    const VERSION: i32 = 2;
    const TABLES: &'static [&'static str] = TABLES;
    const CREATE_SQL: &'static str = CREATE;

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [Envelope],
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        apply(conn, events)
    }
}

fn rating(r: Option<Rating>) -> Option<i16> {
    r.map(|r| i16::from(r.get()))
}

/// The rows a batch works on: loaded, changed in memory, written back.
#[derive(Default)]
struct Work {
    pairs: HashMap<Uuid, PairRow>,
    sessions: HashMap<Uuid, SessionRow>,
    goals: HashMap<Uuid, GoalRow>,
    dirty_pairs: HashSet<Uuid>,
    dirty_sessions: HashSet<Uuid>,
    dirty_goals: HashSet<Uuid>,
    members: Vec<MemberRow>,
    coaching: Vec<CoachingRow>,
    feedback: Vec<FeedbackRow>,
    progress: Vec<GoalProgressRow>,
}

async fn apply(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    apply_pair_events(conn, events).await?;
    let erased = super::erased(events);
    if !erased.is_empty() {
        blank_free_text(conn, &erased).await?;
    }
    Ok(())
}

/// Blanks the free text of every pair an erased person was a member of:
/// it is sealed under every member's key (see `tandem_domain::personal`),
/// so a rebuild reads it as erased too. Texts that were never written stay
/// NULL, so that a rebuild gives the same rows.
async fn blank_free_text(conn: &mut PgConnection, erased: &[Uuid]) -> Result<()> {
    const GONE: &str = "(SELECT pair_id FROM pair_members WHERE person_id = ANY($1))";
    for sql in [
        format!(
            "UPDATE sessions SET focus = NULL, notes = CASE WHEN notes IS NULL THEN NULL ELSE '' END, \
             cancel_reason = CASE WHEN cancel_reason IS NULL THEN NULL ELSE '' END WHERE pair_id IN {GONE}"
        ),
        format!("UPDATE feedback SET strengths = '', improvements = '' WHERE pair_id IN {GONE}"),
        format!(
            "UPDATE goals SET title = '', description = '', \
             outcome_note = CASE WHEN outcome_note IS NULL THEN NULL ELSE '' END WHERE pair_id IN {GONE}"
        ),
        format!("UPDATE goal_progress SET note = '' WHERE pair_id IN {GONE}"),
        format!(
            "UPDATE pairs SET pause_reason = CASE WHEN pause_reason IS NULL THEN NULL ELSE '' END, \
             dissolve_note = CASE WHEN dissolve_note IS NULL THEN NULL ELSE '' END WHERE pair_id IN {GONE}"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(erased).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn apply_pair_events(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    let mut pair_ids = HashSet::new();
    let mut session_ids = HashSet::new();
    let mut goal_ids = HashSet::new();
    for (_, e) in events {
        let DomainEvent::Pair(p) = e else { continue };
        pair_ids.insert(e.stream_id());
        match p {
            PairEvent::SessionHeld(s) => {
                session_ids.insert(s.session_id.as_uuid());
            }
            PairEvent::SessionCancelled(s) => {
                session_ids.insert(s.session_id.as_uuid());
            }
            PairEvent::GoalProgressRecorded(g) => {
                goal_ids.insert(g.goal_id.as_uuid());
            }
            PairEvent::GoalCompleted(g) => {
                goal_ids.insert(g.goal_id.as_uuid());
            }
            PairEvent::GoalAbandoned(g) => {
                goal_ids.insert(g.goal_id.as_uuid());
            }
            _ => {}
        }
    }
    if pair_ids.is_empty() {
        return Ok(());
    }
    let mut w = Work::default();
    let ids: Vec<Uuid> = pair_ids.into_iter().collect();
    let rows: Vec<Json<PairRow>> = sqlx::query_scalar("SELECT to_jsonb(p) FROM pairs p WHERE pair_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    w.pairs = unjson(rows).into_iter().map(|r| (r.pair_id, r)).collect();
    if !session_ids.is_empty() {
        let ids: Vec<Uuid> = session_ids.into_iter().collect();
        let rows: Vec<Json<SessionRow>> =
            sqlx::query_scalar("SELECT to_jsonb(s) FROM sessions s WHERE session_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        w.sessions = unjson(rows).into_iter().map(|r| (r.session_id, r)).collect();
    }
    if !goal_ids.is_empty() {
        let ids: Vec<Uuid> = goal_ids.into_iter().collect();
        let rows: Vec<Json<GoalRow>> = sqlx::query_scalar("SELECT to_jsonb(g) FROM goals g WHERE goal_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        w.goals = unjson(rows).into_iter().map(|r| (r.goal_id, r)).collect();
    }

    for (rec, event) in events {
        let DomainEvent::Pair(event) = event else { continue };
        fold(&mut w, rec, event);
    }

    let pairs: Vec<&PairRow> = w.pairs.values().filter(|r| w.dirty_pairs.contains(&r.pair_id)).collect();
    replace(
        conn,
        "DELETE FROM pairs t USING jsonb_populate_recordset(NULL::pairs, $1) r WHERE t.pair_id = r.pair_id",
        "INSERT INTO pairs SELECT * FROM jsonb_populate_recordset(NULL::pairs, $1)",
        &pairs,
    )
    .await?;
    insert(conn, "INSERT INTO pair_members SELECT * FROM jsonb_populate_recordset(NULL::pair_members, $1)", &w.members)
        .await?;
    let sessions: Vec<&SessionRow> = w.sessions.values().filter(|r| w.dirty_sessions.contains(&r.session_id)).collect();
    replace(
        conn,
        "DELETE FROM sessions t USING jsonb_populate_recordset(NULL::sessions, $1) r WHERE t.session_id = r.session_id",
        "INSERT INTO sessions SELECT * FROM jsonb_populate_recordset(NULL::sessions, $1)",
        &sessions,
    )
    .await?;
    insert(
        conn,
        "INSERT INTO session_coaching SELECT * FROM jsonb_populate_recordset(NULL::session_coaching, $1)",
        &w.coaching,
    )
    .await?;
    insert(conn, "INSERT INTO feedback SELECT * FROM jsonb_populate_recordset(NULL::feedback, $1)", &w.feedback)
        .await?;
    let goals: Vec<&GoalRow> = w.goals.values().filter(|r| w.dirty_goals.contains(&r.goal_id)).collect();
    replace(
        conn,
        "DELETE FROM goals t USING jsonb_populate_recordset(NULL::goals, $1) r WHERE t.goal_id = r.goal_id",
        "INSERT INTO goals SELECT * FROM jsonb_populate_recordset(NULL::goals, $1)",
        &goals,
    )
    .await?;
    insert(
        conn,
        "INSERT INTO goal_progress SELECT * FROM jsonb_populate_recordset(NULL::goal_progress, $1)",
        &w.progress,
    )
    .await?;
    Ok(())
}

/// Folds one pair event into the working rows.
#[expect(clippy::too_many_lines, reason = "one arm per event reads best as one match")]
fn fold(w: &mut Work, rec: &tandem_store::RecordedEvent, event: &PairEvent) {
    let at = rec.recorded_at;
    if let PairEvent::PairFormed(e) = event {
        let id = e.pair_id.as_uuid();
        let program_id = e.program_id.as_uuid();
        let member_ids: Vec<Uuid> = e.members.iter().map(|m| m.as_uuid()).collect();
        w.members.extend(member_ids.iter().map(|&person_id| MemberRow { pair_id: id, person_id, program_id }));
        w.pairs.insert(
            id,
            PairRow {
                pair_id: id,
                program_id,
                kind: e.kind,
                formed_by: e.formed_by,
                match_score: e.match_score.map(f64::from),
                formed_on: e.formed_on,
                member_ids,
                status: PairStatus::Active,
                paused_on: None,
                paused_until: None,
                pause_reason: None,
                resumed_on: None,
                dissolved_on: None,
                dissolve_reason: None,
                dissolve_note: None,
                sessions_held: 0,
                first_session_at: None,
                last_session_at: None,
                formed_at: at,
                updated_at: at,
                version: rec.stream_version,
            },
        );
        w.dirty_pairs.insert(id);
        return;
    }
    let pair_id = rec.stream_id;
    let Some(pair) = w.pairs.get_mut(&pair_id) else {
        tracing::warn!(pair = %pair_id, event = %rec.event_type, "pair event for an unknown pair; skipped");
        return;
    };
    pair.updated_at = at;
    pair.version = rec.stream_version;
    w.dirty_pairs.insert(pair_id);
    let program_id = pair.program_id;
    match event {
        PairEvent::PairFormed(_) => {}
        PairEvent::SessionScheduled(e) => {
            let id = e.session_id.as_uuid();
            w.sessions.insert(
                id,
                SessionRow {
                    session_id: id,
                    pair_id,
                    program_id,
                    status: SessionStatus::Scheduled,
                    scheduled_by: Some(e.scheduled_by.as_uuid()),
                    scheduled_for: Some(e.scheduled_for),
                    focus: e.focus.as_ref().map(|f| f.as_str().to_owned()),
                    held_at: None,
                    minutes: None,
                    activities: Vec::new(),
                    activities_version: None,
                    recorded_by: None,
                    notes: None,
                    cancelled_by: None,
                    cancel_reason: None,
                    created_at: at,
                    updated_at: at,
                },
            );
            w.dirty_sessions.insert(id);
        }
        PairEvent::SessionHeld(e) => {
            let id = e.session_id.as_uuid();
            let session = w.sessions.entry(id).or_insert_with(|| SessionRow {
                session_id: id,
                pair_id,
                program_id,
                status: SessionStatus::Held,
                scheduled_by: None,
                scheduled_for: None,
                focus: None,
                held_at: None,
                minutes: None,
                activities: Vec::new(),
                activities_version: None,
                recorded_by: None,
                notes: None,
                cancelled_by: None,
                cancel_reason: None,
                created_at: at,
                updated_at: at,
            });
            session.status = SessionStatus::Held;
            session.held_at = Some(e.held_at);
            session.minutes = Some(i32::from(e.minutes.get()));
            session.focus = e.focus.as_ref().map(|f| f.as_str().to_owned());
            session.activities.clone_from(&e.activities);
            session.activities_version = Some(i32::from(e.activities_version));
            session.recorded_by = Some(e.recorded_by.as_uuid());
            session.notes = Some(e.notes.as_str().to_owned());
            session.updated_at = at;
            w.dirty_sessions.insert(id);
            w.coaching.extend(e.coaching.iter().map(|c| CoachingRow {
                session_id: id,
                pair_id,
                coach_id: c.coach.as_uuid(),
                coachee_id: c.coachee.as_uuid(),
            }));
            pair.sessions_held += 1;
            pair.first_session_at = Some(pair.first_session_at.map_or(e.held_at, |f| f.min(e.held_at)));
            pair.last_session_at = Some(pair.last_session_at.map_or(e.held_at, |l| l.max(e.held_at)));
        }
        PairEvent::SessionCancelled(e) => {
            let id = e.session_id.as_uuid();
            if let Some(session) = w.sessions.get_mut(&id) {
                session.status = SessionStatus::Cancelled;
                session.cancelled_by = Some(e.cancelled_by.as_uuid());
                session.cancel_reason = Some(e.reason.as_str().to_owned());
                session.updated_at = at;
                w.dirty_sessions.insert(id);
            }
        }
        PairEvent::FeedbackGiven(e) => w.feedback.push(FeedbackRow {
            feedback_id: e.feedback_id.as_uuid(),
            pair_id,
            program_id,
            session_id: e.session_id.map(|s| s.as_uuid()),
            from_id: e.from.as_uuid(),
            to_id: e.to.as_uuid(),
            empathy: rating(e.ratings.empathy),
            active_listening: rating(e.ratings.active_listening),
            curiosity: rating(e.ratings.curiosity),
            patience: rating(e.ratings.patience),
            growth_mindset: rating(e.ratings.growth_mindset),
            strengths: e.strengths.as_str().to_owned(),
            improvements: e.improvements.as_str().to_owned(),
            visibility: e.visibility,
            given_at: e.given_at,
            recorded_at: at,
        }),
        PairEvent::GoalSet(e) => {
            let id = e.goal_id.as_uuid();
            w.goals.insert(
                id,
                GoalRow {
                    goal_id: id,
                    pair_id,
                    program_id,
                    owner_id: e.owner.as_uuid(),
                    // Empty once erased (see `blank_free_text`).
                    title: e.title.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    description: e.description.as_str().to_owned(),
                    due_on: e.due_on,
                    accountability_partner_id: e.accountability_partner.map(|p| p.as_uuid()),
                    set_on: e.set_on,
                    status: GoalStatus::Open,
                    latest_percent: None,
                    progress_entries: 0,
                    completed_on: None,
                    abandoned_on: None,
                    outcome_note: None,
                    created_at: at,
                    updated_at: at,
                },
            );
            w.dirty_goals.insert(id);
        }
        PairEvent::GoalProgressRecorded(e) => {
            let id = e.goal_id.as_uuid();
            let percent = e.percent.map(|p| i16::from(p.get()));
            w.progress.push(GoalProgressRow {
                goal_id: id,
                seq: rec.stream_version,
                pair_id,
                by_id: e.by.as_uuid(),
                percent,
                note: e.note.as_str().to_owned(),
                recorded_on: e.recorded_on,
                recorded_at: at,
            });
            if let Some(goal) = w.goals.get_mut(&id) {
                goal.progress_entries += 1;
                if percent.is_some() {
                    goal.latest_percent = percent;
                }
                goal.updated_at = at;
                w.dirty_goals.insert(id);
            }
        }
        PairEvent::GoalCompleted(e) => {
            let id = e.goal_id.as_uuid();
            if let Some(goal) = w.goals.get_mut(&id) {
                goal.status = GoalStatus::Completed;
                goal.completed_on = Some(e.completed_on);
                goal.outcome_note = Some(e.note.as_str().to_owned());
                goal.updated_at = at;
                w.dirty_goals.insert(id);
            }
        }
        PairEvent::GoalAbandoned(e) => {
            let id = e.goal_id.as_uuid();
            if let Some(goal) = w.goals.get_mut(&id) {
                goal.status = GoalStatus::Abandoned;
                goal.abandoned_on = Some(e.abandoned_on);
                goal.outcome_note = Some(e.reason.as_str().to_owned());
                goal.updated_at = at;
                w.dirty_goals.insert(id);
            }
        }
        PairEvent::PairPaused(e) => {
            pair.status = PairStatus::Paused;
            pair.paused_on = Some(e.paused_on);
            pair.paused_until = e.until;
            pair.pause_reason = Some(e.reason.as_str().to_owned());
        }
        PairEvent::PairResumed(e) => {
            pair.status = PairStatus::Active;
            pair.resumed_on = Some(e.resumed_on);
        }
        PairEvent::PairDissolved(e) => {
            pair.status = PairStatus::Dissolved;
            pair.dissolved_on = Some(e.dissolved_on);
            pair.dissolve_reason = Some(e.reason);
            pair.dissolve_note = Some(e.note.as_str().to_owned());
        }
    }
}
