//! The registry: which read models Tandem runs. The one module that knows
//! every read model; the runner, rebuilds, waits and lag ask it, and no read
//! model imports it.

use std::sync::Arc;

use crate::error::{ProjectionError, Result};
use crate::projection::Projection;
use crate::read_models::{pairs, participation, people, programs, webhooks};

/// Every read model of Tandem, in the order their runners start.
#[must_use]
pub fn read_models() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(people::PeopleProjection),
        Arc::new(programs::ProgramsProjection),
        Arc::new(pairs::PairsProjection),
        Arc::new(participation::ParticipationProjection),
        Arc::new(webhooks::WebhooksProjection),
    ]
}

/// The read model called `name`.
pub fn find(name: &str) -> Result<Arc<dyn Projection>> {
    read_models().into_iter().find(|p| p.name() == name).ok_or_else(|| ProjectionError::UnknownProjection(name.into()))
}
