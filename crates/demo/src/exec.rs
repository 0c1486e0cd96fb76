//! Sending the plan through the command service.
//!
//! Work is cut into *jobs*: a list of commands sent one after another. Up to
//! `concurrency` jobs run at once as tokio tasks. The order that matters is
//! kept by the shape of the jobs and by barriers between batches:
//!
//! * registrations go layer by layer (a manager before their reports);
//! * history goes week by week; inside a week, org changes, then
//!   enrolments (one job per program), then one job per pair or circle
//!   with its commands of the week in date order, then one job with the
//!   week's withdrawals and leaves in date order.
//!
//! A command the domain refuses is counted and the job goes on, except a
//! refused formation, which ends that pair's track (nothing can happen in a
//! pair that does not exist), and a refused registration or launch, which
//! ends the run: everything after depends on them.

use std::sync::Arc;

use tandem_commands::{Command, CommandError, CommandMeta, CommandService};
use tandem_domain::pair::PairCommand;
use tandem_store::{Actor, RecordedEvent};
use tokio::task::JoinSet;

use crate::error::DemoError;
use crate::plan::Schedule;
use crate::{DemoProgress, DemoReport};

/// The actor of every demo command: an administrator acting for the HRIS
/// and for the participants (who are named in each command's `by`).
fn meta() -> CommandMeta {
    CommandMeta::new(Actor { subject: "demo".to_owned(), role: "admin".to_owned() })
}

struct Job {
    /// The pair or circle the job belongs to, if any.
    track: Option<usize>,
    commands: Vec<Command>,
    /// Whether a refusal ends the run.
    must_succeed: bool,
}

struct Outcome {
    track: Option<usize>,
    tally: DemoReport,
    /// The track's formation was refused: skip the rest of it.
    track_ended: bool,
    commands: usize,
}

struct Runner<'p, F> {
    svc: CommandService,
    meta: Arc<CommandMeta>,
    concurrency: usize,
    report: DemoReport,
    progress: &'p mut F,
    /// Tracks whose formation was refused.
    ended: Vec<bool>,
    phase: &'static str,
    done: usize,
    total: usize,
}

impl<F: FnMut(DemoProgress) + Send> Runner<'_, F> {
    fn start_phase(&mut self, phase: &'static str, total: usize) {
        self.phase = phase;
        self.done = 0;
        self.total = total;
        self.tick(0);
    }

    fn tick(&mut self, n: usize) {
        self.done += n;
        (self.progress)(DemoProgress { phase: self.phase, done: self.done, total: self.total });
    }

    /// Runs `jobs`, at most `concurrency` at a time, and waits for all.
    async fn run(&mut self, jobs: Vec<Job>) -> Result<(), DemoError> {
        let mut queue = jobs.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < self.concurrency {
                let Some(job) = queue.next() else { break };
                if job.track.is_some_and(|t| self.ended.get(t).copied().unwrap_or(false)) {
                    self.tick(job.commands.len());
                    continue;
                }
                running.spawn(run_job(self.svc.clone(), Arc::clone(&self.meta), job));
            }
            let Some(joined) = running.join_next().await else { break };
            let outcome = joined.map_err(DemoError::Task)??;
            self.report.add(&outcome.tally);
            if outcome.track_ended
                && let Some(flag) = outcome.track.and_then(|t| self.ended.get_mut(t))
            {
                *flag = true;
            }
            self.tick(outcome.commands);
        }
        Ok(())
    }
}

/// Sends a job's commands in order.
async fn run_job(svc: CommandService, meta: Arc<CommandMeta>, job: Job) -> Result<Outcome, DemoError> {
    let mut out =
        Outcome { track: job.track, tally: DemoReport::default(), track_ended: false, commands: job.commands.len() };
    for command in job.commands {
        let name = command.name();
        let forms = matches!(command, Command::Pair(PairCommand::Form(_)));
        match svc.handle(command, &meta).await {
            Ok(committed) => tally(&mut out.tally, &committed.events),
            Err(e @ (CommandError::Domain(_) | CommandError::Conflict { .. })) => {
                if job.must_succeed {
                    return Err(DemoError::Refused { command: name, source: e });
                }
                let code = match &e {
                    CommandError::Domain(d) => d.code(),
                    _ => "CONFLICT",
                };
                tracing::debug!(command = name, code, error = %e, "demo command refused");
                out.tally.refused += 1;
                if forms {
                    out.track_ended = true;
                    break;
                }
            }
            Err(source) => return Err(DemoError::Command { command: name, source }),
        }
    }
    Ok(out)
}

/// Counts what a command committed, cascades included.
fn tally(r: &mut DemoReport, events: &[RecordedEvent]) {
    for e in events {
        r.events += 1;
        match e.event_type.as_str() {
            "PersonRegistered" => r.people += 1,
            "ProgramLaunched" => r.programs += 1,
            "PairFormed" if e.data.get("kind").and_then(serde_json::Value::as_str) == Some("CIRCLES") => {
                r.circles += 1;
            }
            "PairFormed" => r.pairs += 1,
            "SessionHeld" => r.sessions += 1,
            "FeedbackGiven" => r.feedback += 1,
            "GoalSet" => r.goals += 1,
            "PersonLeft" => r.leavers += 1,
            _ => {}
        }
    }
}

fn singles(commands: Vec<Command>, must_succeed: bool) -> Vec<Job> {
    commands.into_iter().map(|c| Job { track: None, commands: vec![c], must_succeed }).collect()
}

/// Runs the schedule: people, programs, then the history week by week.
pub(crate) async fn execute<F: FnMut(DemoProgress) + Send>(
    svc: &CommandService,
    schedule: Schedule,
    concurrency: usize,
    progress: &mut F,
) -> Result<DemoReport, DemoError> {
    let mut runner = Runner {
        svc: svc.clone(),
        meta: Arc::new(meta()),
        concurrency: concurrency.max(1),
        report: DemoReport::default(),
        progress,
        ended: vec![false; schedule.tracks],
        phase: "people",
        done: 0,
        total: 0,
    };
    let Schedule { layers, launches, windows, .. } = schedule;

    runner.start_phase("people", layers.iter().map(Vec::len).sum());
    for layer in layers {
        runner.run(singles(layer, true)).await?;
    }

    runner.start_phase("programs", launches.len());
    runner.run(singles(launches, true)).await?;

    runner.start_phase("history", windows.iter().map(crate::plan::Window::len).sum());
    for w in windows {
        runner.run(singles(w.org, false)).await?;
        let enrolments = w
            .enrolments
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(|commands| Job { track: None, commands, must_succeed: false })
            .collect();
        runner.run(enrolments).await?;
        let tracks =
            w.tracks.into_iter().map(|(t, commands)| Job { track: Some(t), commands, must_succeed: false }).collect();
        runner.run(tracks).await?;
        if !w.exits.is_empty() {
            runner.run(vec![Job { track: None, commands: w.exits, must_succeed: false }]).await?;
        }
    }
    Ok(runner.report)
}
