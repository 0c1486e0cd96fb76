//! The `people` projection: each person's current profile, and their dated
//! org history (manager, department, title, level) to answer "as of date D".
//!
//! Org changes carry an effective date and can arrive late (a back-dated
//! HRIS correction) or early (a promotion announced ahead). The history is
//! therefore not appended to but recomputed for a person whenever one of
//! their changes arrives, from `person_org_changes` (every change as
//! recorded), with the domain's semantics (`Person::org_on`): changes apply
//! in effective-date order, changes of the same date in recording order, and
//! the registration facts hold before the first change (also before the hire
//! date, as the domain answers).
//!
//! Tables:
//! - `people`: one row per person. `department`, `title`, `level` and
//!   `manager_id` are the latest *recorded* facts (every change applied,
//!   future-dated ones too), like `Person::org_latest`; use the history (or
//!   the queries, which take a date) for what holds on a given day. An
//!   erased person keeps their row with `external_id`, `name`, `email` and
//!   `location` blanked (NULL).
//! - `person_org_changes`: the registration facts (`base`) and every dated
//!   change, the input of the recomputation.
//! - `person_org_history`: non-overlapping ranges `[valid_from, valid_to)`
//!   per person (NULL bounds are open), one per distinct effective date.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use tandem_domain::DomainEvent;
use tandem_domain::person::PersonEvent;
use tandem_domain::values::LeaveReason;
use uuid::Uuid;

use crate::error::Result;
use crate::projection::{Envelope, ReadModel};
use crate::sql::{insert, replace, unjson};

/// The projection's name.
pub const NAME: &str = "people";

/// Keeps `people`, `person_org_changes` and `person_org_history`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeopleProjection;

const TABLES: &[&str] = &["people", "person_org_changes", "person_org_history"];

const CREATE: &str = r"
CREATE TABLE people (
    person_id      uuid PRIMARY KEY,
    -- NULL once the person is erased, like name, email and location.
    external_id    text,
    name           text,
    email          text,
    -- lower(name), '' once erased: the key of the people list's keyset
    -- pagination, NOT NULL so that (sort_name, person_id) compares simply.
    sort_name      text NOT NULL,
    location       text,
    hired_on       date NOT NULL,
    -- Latest recorded org facts (future-dated changes included).
    department     text NOT NULL,
    title          text NOT NULL,
    level          smallint NOT NULL,
    manager_id     uuid,
    -- Set while the person is gone from the organisation.
    left_on        date,
    leave_reason   text,
    rejoined_on    date,
    erased         boolean NOT NULL,
    registered_at  timestamptz NOT NULL,
    -- recorded_at and stream version of the person's last event.
    updated_at     timestamptz NOT NULL,
    version        integer NOT NULL
);
CREATE INDEX people_sort_idx ON people (sort_name, person_id);
CREATE INDEX people_external_id_idx ON people (external_id);
-- Signing in by e-mail (TANDEM_JWT_PERSON_MATCH=email) looks people up by
-- lower(email); erased people (email NULL) are left out.
CREATE INDEX people_email_idx ON people (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX people_manager_idx ON people (manager_id) WHERE manager_id IS NOT NULL;

CREATE TABLE person_org_changes (
    person_id     uuid NOT NULL,
    -- Stream version of the event: the recording order.
    seq           integer NOT NULL,
    -- The registration facts (effective_on = hired_on), not a change.
    base          boolean NOT NULL,
    effective_on  date NOT NULL,
    -- Whether the change sets the manager (manager_id NULL then clears it).
    manager_set   boolean NOT NULL,
    manager_id    uuid,
    department    text,
    title         text,
    level         smallint,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (person_id, seq)
);

CREATE TABLE person_org_history (
    person_id   uuid NOT NULL,
    -- 0, 1, 2 … in date order.
    seq         integer NOT NULL,
    -- Inclusive; NULL for the first range (the registration facts hold for
    -- every earlier date).
    valid_from  date,
    -- Exclusive; NULL for the current (last) range.
    valid_to    date,
    manager_id  uuid,
    department  text NOT NULL,
    title       text NOT NULL,
    level       smallint NOT NULL,
    PRIMARY KEY (person_id, seq)
);
-- Direct reports as of a date, and filters by department or level as of a
-- date (the range check runs on the few rows each index returns).
CREATE INDEX person_org_history_manager_idx ON person_org_history (manager_id) WHERE manager_id IS NOT NULL;
CREATE INDEX person_org_history_department_idx ON person_org_history (department);
CREATE INDEX person_org_history_level_idx ON person_org_history (level);
";

/// A row of `people`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRow {
    pub person_id: Uuid,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub sort_name: String,
    pub location: Option<String>,
    pub hired_on: NaiveDate,
    pub department: String,
    pub title: String,
    pub level: i16,
    pub manager_id: Option<Uuid>,
    pub left_on: Option<NaiveDate>,
    pub leave_reason: Option<LeaveReason>,
    pub rejoined_on: Option<NaiveDate>,
    pub erased: bool,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// A row of `person_org_changes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrgChangeRow {
    person_id: Uuid,
    seq: i32,
    base: bool,
    effective_on: NaiveDate,
    manager_set: bool,
    manager_id: Option<Uuid>,
    department: Option<String>,
    title: Option<String>,
    level: Option<i16>,
    recorded_at: DateTime<Utc>,
}

/// A row of `person_org_history`: the org facts of a person on every date
/// in `[valid_from, valid_to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRangeRow {
    pub person_id: Uuid,
    pub seq: i32,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub manager_id: Option<Uuid>,
    pub department: String,
    pub title: String,
    pub level: i16,
}

impl OrgRangeRow {
    /// Whether the range holds on `date`.
    #[must_use]
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= date) && self.valid_to.is_none_or(|t| date < t)
    }
}

impl ReadModel for PeopleProjection {
    const NAME: &'static str = NAME;
    // 2: `external_id` is blanked on erasure.
    // 3: the index on `lower(email)`.
    const VERSION: i32 = 3;
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

/// The facts a history range carries.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Facts {
    manager_id: Option<Uuid>,
    department: String,
    title: String,
    level: i16,
}

impl Facts {
    fn apply(&mut self, c: &OrgChangeRow) {
        if c.manager_set {
            self.manager_id = c.manager_id;
        }
        if let Some(d) = &c.department {
            self.department.clone_from(d);
        }
        if let Some(t) = &c.title {
            self.title.clone_from(t);
        }
        if let Some(l) = c.level {
            self.level = l;
        }
    }
}

/// Recomputes a person's history from their registration facts and
/// changes; returns the ranges and the latest facts. `None` without a base.
fn history(person_id: Uuid, changes: &[&OrgChangeRow]) -> Option<(Vec<OrgRangeRow>, Facts)> {
    let base = changes.iter().find(|c| c.base)?;
    let mut facts = Facts {
        manager_id: base.manager_id,
        department: base.department.clone().unwrap_or_default(),
        title: base.title.clone().unwrap_or_default(),
        level: base.level.unwrap_or_default(),
    };
    let mut dated: Vec<&OrgChangeRow> = changes.iter().copied().filter(|c| !c.base).collect();
    // Effective date first, recording order among changes of one date.
    dated.sort_by_key(|c| (c.effective_on, c.seq));
    let mut by_date: BTreeMap<NaiveDate, Vec<&OrgChangeRow>> = BTreeMap::new();
    for c in dated {
        by_date.entry(c.effective_on).or_default().push(c);
    }
    let mut ranges = Vec::with_capacity(by_date.len() + 1);
    let mut valid_from = None;
    for (date, group) in by_date {
        ranges.push(range(person_id, ranges.len(), valid_from, Some(date), &facts));
        for c in group {
            facts.apply(c);
        }
        valid_from = Some(date);
    }
    ranges.push(range(person_id, ranges.len(), valid_from, None, &facts));
    Some((ranges, facts))
}

fn range(
    person_id: Uuid,
    seq: usize,
    valid_from: Option<NaiveDate>,
    valid_to: Option<NaiveDate>,
    f: &Facts,
) -> OrgRangeRow {
    OrgRangeRow {
        person_id,
        seq: i32::try_from(seq).unwrap_or(i32::MAX),
        valid_from,
        valid_to,
        manager_id: f.manager_id,
        department: f.department.clone(),
        title: f.title.clone(),
        level: f.level,
    }
}

async fn apply(conn: &mut PgConnection, events: &[Envelope]) -> Result<()> {
    let ids: Vec<Uuid> = events
        .iter()
        .filter(|(_, e)| matches!(e, DomainEvent::Person(_)))
        .map(|(_, e)| e.stream_id())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let loaded: Vec<Json<PersonRow>> = sqlx::query_scalar("SELECT to_jsonb(p) FROM people p WHERE person_id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut rows: HashMap<Uuid, PersonRow> = unjson(loaded).into_iter().map(|r| (r.person_id, r)).collect();
    let mut dirty: HashSet<Uuid> = HashSet::new();
    let mut recompute: HashSet<Uuid> = HashSet::new();
    let mut new_changes: Vec<OrgChangeRow> = Vec::new();

    for (rec, event) in events {
        let DomainEvent::Person(event) = event else { continue };
        let id = event_person(event);
        if let PersonEvent::PersonRegistered(e) = event {
            // Personal fields read back empty once the person is erased
            // (their key is gone), so a rebuild after an erasure writes
            // what the erasure left.
            let name = e.name.as_ref().map(|n| n.as_str().to_owned());
            rows.insert(
                id,
                PersonRow {
                    person_id: id,
                    external_id: e.external_id.as_ref().map(|x| x.as_str().to_owned()),
                    sort_name: name.as_deref().map(str::to_lowercase).unwrap_or_default(),
                    name,
                    email: e.email.as_ref().map(|m| m.as_str().to_owned()),
                    location: e.location.as_ref().map(|l| l.as_str().to_owned()),
                    hired_on: e.hired_on,
                    department: e.department.as_str().to_owned(),
                    title: e.title.as_str().to_owned(),
                    level: i16::from(e.level.get()),
                    manager_id: e.manager.map(|m| m.as_uuid()),
                    left_on: None,
                    leave_reason: None,
                    rejoined_on: None,
                    erased: false,
                    registered_at: rec.recorded_at,
                    updated_at: rec.recorded_at,
                    version: rec.stream_version,
                },
            );
            new_changes.push(OrgChangeRow {
                person_id: id,
                seq: rec.stream_version,
                base: true,
                effective_on: e.hired_on,
                manager_set: true,
                manager_id: e.manager.map(|m| m.as_uuid()),
                department: Some(e.department.as_str().to_owned()),
                title: Some(e.title.as_str().to_owned()),
                level: Some(i16::from(e.level.get())),
                recorded_at: rec.recorded_at,
            });
            dirty.insert(id);
            recompute.insert(id);
            continue;
        }
        let Some(row) = rows.get_mut(&id) else {
            // The domain only emits these for registered people; a stray one
            // is logged and skipped rather than stalling every read model.
            tracing::warn!(person = %id, event = event_name(event), "person event for an unknown person; skipped");
            continue;
        };
        row.updated_at = rec.recorded_at;
        row.version = rec.stream_version;
        dirty.insert(id);
        match event {
            PersonEvent::PersonRegistered(_) => {}
            PersonEvent::PersonUpdated(e) => {
                let c = &e.changes;
                if !row.erased {
                    if let Some(n) = &c.name {
                        row.name = Some(n.as_str().to_owned());
                        row.sort_name = n.as_str().to_lowercase();
                    }
                    if let Some(m) = &c.email {
                        row.email = Some(m.as_str().to_owned());
                    }
                    if let Some(l) = &c.location {
                        row.location = l.as_ref().map(|l| l.as_str().to_owned());
                    }
                }
                if c.manager.is_some() || c.department.is_some() || c.title.is_some() || c.level.is_some() {
                    new_changes.push(OrgChangeRow {
                        person_id: id,
                        seq: rec.stream_version,
                        base: false,
                        effective_on: e.effective_on,
                        manager_set: c.manager.is_some(),
                        manager_id: c.manager.flatten().map(|m| m.as_uuid()),
                        department: c.department.as_ref().map(|d| d.as_str().to_owned()),
                        title: c.title.as_ref().map(|t| t.as_str().to_owned()),
                        level: c.level.map(|l| i16::from(l.get())),
                        recorded_at: rec.recorded_at,
                    });
                    recompute.insert(id);
                }
            }
            PersonEvent::PersonLeft(e) => {
                row.left_on = Some(e.left_on);
                row.leave_reason = Some(e.reason);
            }
            PersonEvent::PersonRejoined(e) => {
                row.left_on = None;
                row.leave_reason = None;
                row.rejoined_on = Some(e.rejoined_on);
            }
            PersonEvent::PersonErased(_) => {
                row.erased = true;
                row.external_id = None;
                row.name = None;
                row.email = None;
                row.location = None;
                row.sort_name = String::new();
            }
        }
    }

    // Recompute the history of everyone whose org facts changed, from all
    // their changes: those stored before this batch and those of the batch.
    let mut history_rows: Vec<OrgRangeRow> = Vec::new();
    let recompute: Vec<Uuid> = recompute.into_iter().collect();
    if !recompute.is_empty() {
        let stored: Vec<Json<OrgChangeRow>> =
            sqlx::query_scalar("SELECT to_jsonb(c) FROM person_org_changes c WHERE person_id = ANY($1)")
                .bind(&recompute)
                .fetch_all(&mut *conn)
                .await?;
        let stored = unjson(stored);
        let mut per_person: HashMap<Uuid, Vec<&OrgChangeRow>> = HashMap::new();
        for c in stored.iter().chain(&new_changes) {
            per_person.entry(c.person_id).or_default().push(c);
        }
        for id in &recompute {
            let Some((ranges, latest)) = per_person.get(id).and_then(|changes| history(*id, changes)) else {
                continue;
            };
            if let Some(row) = rows.get_mut(id) {
                row.department = latest.department;
                row.title = latest.title;
                row.level = latest.level;
                row.manager_id = latest.manager_id;
                dirty.insert(*id);
            }
            history_rows.extend(ranges);
        }
        sqlx::query("DELETE FROM person_org_history WHERE person_id = ANY($1)")
            .bind(&recompute)
            .execute(&mut *conn)
            .await?;
    }

    let changed: Vec<&PersonRow> = rows.values().filter(|r| dirty.contains(&r.person_id)).collect();
    replace(
        conn,
        "DELETE FROM people t USING jsonb_populate_recordset(NULL::people, $1) r WHERE t.person_id = r.person_id",
        "INSERT INTO people SELECT * FROM jsonb_populate_recordset(NULL::people, $1)",
        &changed,
    )
    .await?;
    insert(
        conn,
        "INSERT INTO person_org_changes SELECT * FROM jsonb_populate_recordset(NULL::person_org_changes, $1)",
        &new_changes,
    )
    .await?;
    insert(
        conn,
        "INSERT INTO person_org_history SELECT * FROM jsonb_populate_recordset(NULL::person_org_history, $1)",
        &history_rows,
    )
    .await?;
    Ok(())
}

fn event_person(e: &PersonEvent) -> Uuid {
    match e {
        PersonEvent::PersonRegistered(e) => e.person_id,
        PersonEvent::PersonUpdated(e) => e.person_id,
        PersonEvent::PersonLeft(e) => e.person_id,
        PersonEvent::PersonRejoined(e) => e.person_id,
        PersonEvent::PersonErased(e) => e.person_id,
    }
    .as_uuid()
}

fn event_name(e: &PersonEvent) -> &'static str {
    match e {
        PersonEvent::PersonRegistered(_) => "PersonRegistered",
        PersonEvent::PersonUpdated(_) => "PersonUpdated",
        PersonEvent::PersonLeft(_) => "PersonLeft",
        PersonEvent::PersonRejoined(_) => "PersonRejoined",
        PersonEvent::PersonErased(_) => "PersonErased",
    }
}
