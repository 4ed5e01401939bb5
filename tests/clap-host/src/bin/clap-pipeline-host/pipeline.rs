//! The step table: each step's name, as the test harness (`tests/pipeline_steps.rs`) passes it on
//! the command line, and the function that plays it.

use crate::{generate, interrupt, session, transport, triggers};
use anyhow::{bail, Result};
use std::path::Path;

pub const STEPS: [&str; 11] = [
    "generate-44100",
    "generate-48000",
    "four-instances",
    "cancel",
    "remove",
    "rate-change",
    "corrupt-model",
    "reopen",
    "follow-transport",
    "preview-while-generating",
    "triggers",
];

pub fn run(step: &str, bundle: &Path) -> Result<()> {
    match step {
        "generate-44100" => generate::generate(bundle, 44_100.0),
        "generate-48000" => generate::generate(bundle, 48_000.0),
        "four-instances" => generate::four_instances(bundle),
        "cancel" => interrupt::cancel(bundle),
        "remove" => interrupt::remove(bundle),
        "rate-change" => interrupt::rate_change(bundle),
        "corrupt-model" => session::corrupt_model(bundle),
        "reopen" => session::reopen(bundle),
        "follow-transport" => transport::follow_transport(bundle),
        "preview-while-generating" => generate::preview_while_generating(bundle),
        "triggers" => triggers::triggers(bundle),
        other => bail!("unknown step '{other}' (steps: {})", STEPS.join(", ")),
    }
}
