//! PLACEHOLDER: to be implemented.

use crate::{Context, Error, LogitsProcessor, Scores};

/// PLACEHOLDER: to be implemented.
#[derive(Debug, Clone, Default)]
pub struct PresenceFrequencyPenalty {}

impl LogitsProcessor for PresenceFrequencyPenalty {
    fn process(&mut self, _ctx: &Context<'_>, _scores: &mut Scores<'_>) -> Result<(), Error> {
        Ok(())
    }
}
