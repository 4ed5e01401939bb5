//! `clap-pipeline-host <step> <bundle.clap>`: the generation pipeline end to end in a CLAP host
//! (clack-host), one step per process so that a plugin crash fails that step by name.
//!
//! Each step plays a DAW: it sets the prompt and settings through the plugin's state, feeds a
//! melody, raises "Generate" through the parameter (as automation would; no editor is open),
//! keeps processing until the clip is ready and checks what comes out. The model is whatever
//! `MELODYGEN_MODEL` names (the tests point it at a tiny checkpoint) and clips go to
//! `MELODYGEN_CLIP_DIR`; both are read by the plugin itself.
//!
//! What the steps observe comes from the plugin's ordinary saved state: the `clips` field (paths
//! and metadata) and the read-only `diagnostics` field (model loads, job outcomes, progress).
//!
//! Files: `pipeline` is the step table; `harness` holds what every step does as the DAW
//! (configure an instance, press a parameter, process until the job is done); `heard` reads a
//! clip file and checks the output against it; the steps themselves are grouped in `generate`
//! (clips made and heard, several instances, preview while generating), `interrupt` (cancel,
//! removal, rate change), `session` (corrupt model, reopened session), `transport`
//! (following the host's song position) and `triggers` (the Generate and Cancel parameters across
//! state loads, restarts and resets).

mod generate;
mod harness;
mod heard;
mod interrupt;
mod pipeline;
mod session;
mod transport;
mod triggers;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [step, bundle] = args.as_slice() else {
        eprintln!(
            "usage: clap-pipeline-host <step> <path/to/Plugin.clap>\nsteps: {}",
            pipeline::STEPS.join(", ")
        );
        return ExitCode::from(2);
    };
    match pipeline::run(step, &PathBuf::from(bundle)) {
        Ok(()) => {
            println!("CLAP pipeline step '{step}': ok");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("CLAP pipeline step '{step}' on '{bundle}': FAILED: {err:#}");
            ExitCode::from(1)
        }
    }
}
