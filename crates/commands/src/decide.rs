//! Deciding one command: what each kind of command locks and loads, the
//! context it gathers for the domain's `decide` (the org chart as of a
//! date, enrolments, guard rows), and the [`Plan`] of what it will write,
//! including the cascades (a person leaving or a program closing dissolves
//! their pairs in the same plan).

use chrono::Utc;
use serde_json::Value;
use tandem_domain::PairId;
use tandem_domain::event::{DomainEvent, StreamType};
use tandem_domain::pair::{self, PairCommand, PairContext, PersonFacts};
use tandem_domain::person::{self, ManagerFacts, PersonCommand, PersonContext};
use tandem_domain::program::{self, ParticipantFacts, ProgramCommand, ProgramContext};
use tandem_domain::values::{DissolveReason, LongText, MAX_CIRCLE_SIZE};
use tandem_domain::webhook::{self, WebhookCommand};
use tandem_store::{IdempotencyKey, RequestHash, idempotency_lookup_or_lock};
use uuid::Uuid;

use crate::command::Command;
use crate::error::CommandError;
use crate::io::{Lock, Unit};
use crate::plan::{Guard, Key, Plan};

/// What planning produced.
pub(crate) enum Prepared {
    Replay(Value),
    Plan(Plan),
}

/// Plans one command inside its batch: the idempotency lookup, then the
/// command's own planning.
pub(crate) async fn prepare(
    unit: &mut Unit,
    command: Command,
    idempotency: Option<(IdempotencyKey, RequestHash)>,
) -> Result<Prepared, CommandError> {
    if let Some((key, fingerprint)) = idempotency {
        unit.touched.insert(Key::Idempotency(key.clone()));
        let found = unit
            .io
            .run(move |conn| Box::pin(async move { Ok(idempotency_lookup_or_lock(conn, &key, &fingerprint).await?) }))
            .await?;
        if let Some(record) = found {
            return Ok(Prepared::Replay(record.result));
        }
    }
    Ok(Prepared::Plan(match command {
        Command::Person(c) => plan_person(unit, c).await?,
        Command::Program(c) => plan_program(unit, c).await?,
        Command::Pair(c) => plan_pair(unit, c).await?,
        Command::Webhook(c) => plan_webhook(unit, c).await?,
    }))
}

fn today() -> chrono::NaiveDate {
    Utc::now().date_naive()
}

async fn plan_person(unit: &mut Unit, command: PersonCommand) -> Result<Plan, CommandError> {
    let id = command.person_id();
    let target = unit.person(id, Lock::Exclusive).await?;
    let mut ctx = PersonContext::default();
    if let (Some(m), Some(date)) = (command.new_manager(), command.effective_on())
        && m != id
    {
        let manager = unit.person(m, Lock::Shared).await?;
        let chain = if manager.state.is_registered() { unit.chain(m, date).await? } else { Vec::new() };
        ctx.manager =
            Some(ManagerFacts { exists: manager.state.is_registered(), left: manager.state.has_left(), chain });
    }
    let mut plan = Plan::default();
    if let PersonCommand::Register(r) = &command {
        ctx.external_id_taken = unit.external_id_taken(r.external_id.as_str(), id).await?;
        plan.guards.push(Guard::ExternalId { external_id: r.external_id.as_str().to_owned(), person: id });
    }
    if let PersonCommand::Erase { .. } = &command {
        plan.guards.push(Guard::ReleaseExternalId {
            external_id: target.state.external_id.as_ref().map(|e| e.as_str().to_owned()),
            person: id,
        });
    }
    let cascade = match &command {
        PersonCommand::RecordLeft { left_on, .. } => Some(*left_on),
        PersonCommand::Erase { .. } => Some(today()),
        _ => None,
    };
    let events = person::decide(&target.state, command, &ctx)?;
    let changed = !events.is_empty();
    // The person's own events first, so they precede the dissolutions in the log.
    plan.write(
        id.as_uuid(),
        StreamType::Person,
        target.expected(),
        events.into_iter().map(DomainEvent::Person).collect(),
        &[],
    );
    if let Some(on) = cascade
        && changed
    {
        // A member who leaves ends their pairs: nothing can happen in them any more.
        for pair_id in unit.pairs_of_person(id).await? {
            let p = unit.pair(pair_id, Lock::Exclusive).await?;
            if let Some(e) = pair::dissolve_for_cleanup(&p.state, DissolveReason::MemberLeft, LongText::default(), on) {
                plan.write(
                    pair_id.as_uuid(),
                    StreamType::Pair,
                    p.expected(),
                    vec![DomainEvent::Pair(e)],
                    &p.state.members,
                );
                plan.guards.push(release(pair_id, &p.state));
            }
        }
    }
    Ok(plan)
}

async fn plan_program(unit: &mut Unit, command: ProgramCommand) -> Result<Plan, CommandError> {
    let id = command.program_id();
    let target = unit.program(id, Lock::Exclusive).await?;
    let mut ctx = ProgramContext::default();
    match &command {
        ProgramCommand::Enrol(c) => {
            let p = unit.person(c.person_id, Lock::Shared).await?;
            ctx.person = Some(ParticipantFacts {
                exists: p.state.is_registered(),
                left: p.state.has_left(),
                erased: p.state.erased,
                in_active_pair: false,
            });
        }
        ProgramCommand::Withdraw { person_id, .. } => {
            let paired = unit.paired_in_program(id, &[*person_id]).await?;
            ctx.person =
                Some(ParticipantFacts { exists: true, in_active_pair: !paired.is_empty(), ..Default::default() });
        }
        _ => {}
    }
    let closing = match &command {
        ProgramCommand::Close { closed_on, .. } => Some(*closed_on),
        _ => None,
    };
    let events = program::decide(&target.state, command, &ctx)?;
    let mut plan = Plan::default();
    plan.write(
        id.as_uuid(),
        StreamType::Program,
        target.expected(),
        events.into_iter().map(DomainEvent::Program).collect(),
        &[],
    );
    if let Some(on) = closing {
        // Closing a program ends its pairs, so that nothing more happens in them.
        for pair_id in unit.pairs_of_program(id).await? {
            let p = unit.pair(pair_id, Lock::Exclusive).await?;
            if let Some(e) =
                pair::dissolve_for_cleanup(&p.state, DissolveReason::ProgramClosed, LongText::default(), on)
            {
                plan.write(
                    pair_id.as_uuid(),
                    StreamType::Pair,
                    p.expected(),
                    vec![DomainEvent::Pair(e)],
                    &p.state.members,
                );
                plan.guards.push(release(pair_id, &p.state));
            }
        }
    }
    Ok(plan)
}

/// The guard change of a pair that ends.
fn release(pair: PairId, state: &pair::Pair) -> Guard {
    Guard::Release { pair, program: state.program_id, members: state.members.clone() }
}

async fn plan_pair(unit: &mut Unit, command: PairCommand) -> Result<Plan, CommandError> {
    let pair_id = command.pair_id();
    // A pair seen before: lock and load it with its program and members in
    // one round each (the pair first in intent, all in key order).
    let known = unit.cached_pair_streams(pair_id);
    if !known.is_empty() {
        let mut streams = vec![(pair_id.as_uuid(), Lock::Exclusive)];
        streams.extend(known.into_iter().map(|id| (id, Lock::Shared)));
        unit.preload(&streams).await?;
    }
    let target = unit.pair(pair_id, Lock::Exclusive).await?;
    let mut ctx = PairContext::default();
    let mut plan = Plan::default();
    if let PairCommand::Form(f) = &command {
        // An oversized member list is refused by `decide` on its size alone;
        // do not load a hostile number of streams first.
        if f.members.len() <= usize::from(MAX_CIRCLE_SIZE) {
            let mut streams = vec![(f.program_id.as_uuid(), Lock::Shared)];
            streams.extend(f.members.iter().map(|m| (m.as_uuid(), Lock::Shared)));
            unit.preload(&streams).await?;
        }
        ctx.program = unit.program(f.program_id, Lock::Shared).await?.state;
        if f.members.len() <= usize::from(MAX_CIRCLE_SIZE) {
            for m in &f.members {
                let p = unit.person(*m, Lock::Shared).await?;
                let org = p.state.org_on(f.formed_on);
                let chain = if p.state.is_registered() { unit.chain(*m, f.formed_on).await? } else { Vec::new() };
                ctx.people.insert(
                    *m,
                    PersonFacts {
                        exists: p.state.is_registered(),
                        left: p.state.has_left(),
                        erased: p.state.erased,
                        level: org.map(|o| o.level),
                        chain,
                    },
                );
            }
            ctx.already_paired = unit.paired_in_program(f.program_id, &f.members).await?;
        }
        plan.guards.push(Guard::Memberships { program: f.program_id, pair: pair_id, members: f.members.clone() });
    } else {
        // Everything the decision reads, locked in one round and loaded in another.
        let mut streams: Vec<(Uuid, Lock)> =
            target.state.program_id.map(|p| (p.as_uuid(), Lock::Shared)).into_iter().collect();
        streams.extend(target.state.members.iter().map(|m| (m.as_uuid(), Lock::Shared)));
        unit.preload(&streams).await?;
        if let Some(program_id) = target.state.program_id {
            ctx.program = unit.program(program_id, Lock::Shared).await?.state;
        }
        for m in target.state.members.clone() {
            let p = unit.person(m, Lock::Shared).await?;
            ctx.people.insert(
                m,
                PersonFacts {
                    exists: p.state.is_registered(),
                    left: p.state.has_left(),
                    erased: p.state.erased,
                    ..Default::default()
                },
            );
        }
        if matches!(command, PairCommand::Dissolve { .. }) {
            plan.guards.push(release(pair_id, &target.state));
        }
    }
    let events = pair::decide(&target.state, command, &ctx)?;
    if events.is_empty() {
        plan.guards.clear();
    }
    plan.write(
        pair_id.as_uuid(),
        StreamType::Pair,
        target.expected(),
        events.into_iter().map(DomainEvent::Pair).collect(),
        &target.state.members,
    );
    Ok(plan)
}

async fn plan_webhook(unit: &mut Unit, command: WebhookCommand) -> Result<Plan, CommandError> {
    let id = command.endpoint_id();
    let target = unit.webhook(id, Lock::Exclusive).await?;
    let events = webhook::decide(&target.state, command)?;
    let mut plan = Plan::default();
    plan.write(
        id.as_uuid(),
        StreamType::Webhook,
        target.expected(),
        events.into_iter().map(DomainEvent::Webhook).collect(),
        &[],
    );
    Ok(plan)
}
