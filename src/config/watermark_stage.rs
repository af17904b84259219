//! The watermark stage of a plan: a [`Watermark`] whose vocabulary size is
//! the rows' (transformers takes the model's), built on the first row.

use super::WatermarkingConfig;
use crate::processors::Watermark;
use crate::{Context, Error, LogitsProcessor, Scores};

/// A [`Watermark`] built for the size of the rows it is given (rebuilt if
/// that size changes).
#[derive(Debug, Clone)]
pub(crate) struct WatermarkStage {
    settings: WatermarkingConfig,
    built: Option<Watermark>,
}

impl WatermarkStage {
    /// Checks the settings (all but the vocabulary size).
    pub(crate) fn new(settings: WatermarkingConfig) -> Result<Self, Error> {
        settings.check()?;
        Ok(WatermarkStage { settings, built: None })
    }
}

impl LogitsProcessor for WatermarkStage {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let vocab = scores.vocab_size();
        let stale = self.built.as_ref().is_none_or(|w| w.config().vocab_size() != vocab);
        if stale {
            self.built = Some(Watermark::new(self.settings.config(vocab)?));
        }
        match &mut self.built {
            Some(watermark) => watermark.process(ctx, scores),
            None => Ok(()),
        }
    }
}
