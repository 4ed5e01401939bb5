//! The momentary trigger parameters ("Generate", "Cancel") in a host that saves, loads, restarts
//! and resets: only a change from off to on while the host processes is a press. A state saved
//! with a trigger on, processing that (re)starts with one on, and `reset()` start nothing.

use crate::harness::{
    configured, count, default_settings, diagnostics, finished_or_failed, melody, process_until, silence, BLOCK,
};
use anyhow::{ensure, Result};
use clap_test_host::instance::open_entry;
use clap_test_host::steps::GENERATE;
use clap_test_host::{state, LoadedPlugin, ParamEvent};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the host keeps processing (and restarting) where nothing may start: the dispatcher
/// takes a request within 20 ms, so a spurious one would show in the stage long before this.
const QUIET: Duration = Duration::from_millis(800);

/// Renders silence for [`QUIET`], each render a restart of processing (activate, start, stop,
/// deactivate) with a `reset()` in the middle, and returns the diagnostics.
fn restart_repeatedly(plugin: &mut LoadedPlugin, rate: f64) -> Result<Value> {
    let start = Instant::now();
    let mut restarts = 0;
    while start.elapsed() < QUIET {
        plugin.render(rate, BLOCK, &silence(BLOCK * 8), &[ParamEvent::Reset { frame: 4 * BLOCK as u32 }])?;
        restarts += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("{restarts} restarts of processing, each with a reset()");
    diagnostics(plugin)
}

pub fn triggers(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugin = configured(&entry, "triggers: soft piano", default_settings(3))?;
    let generate = plugin.param_named(GENERATE)?.id;
    let cancel = plugin.param_named("Cancel")?.id;

    // 1. A project saved with both triggers on is loaded, processed, reset and restarted.
    let mut saved = state::decode(&plugin.save_state()?)?;
    saved["params"]["generate"] = json!({"bool": true});
    saved["params"]["cancel"] = json!({"bool": true});
    plugin.load_state(&state::encode(&saved))?;
    plugin.render(rate, BLOCK, &melody(rate), &[ParamEvent::Reset { frame: 16 * BLOCK as u32 }])?;
    let d = restart_repeatedly(&mut plugin, rate)?;
    ensure!(
        d["stage"] == "Idle" && !finished_or_failed(&d),
        "a state saved with Generate on started a job when loaded, processed, reset or restarted: {d}"
    );
    ensure!(
        plugin.value(generate)? == 0.0 && plugin.value(cancel)? == 0.0,
        "a loaded state moved the triggers (they are actions, not settings)"
    );

    // 2. Cancel switched on while processing (a press with no job: nothing to cancel), and
    //    once the dispatcher has taken that, Generate in the next run: a press, a job. Both stay
    //    on; every later render restarts processing, and a Cancel that took its "on" after a
    //    restart for a press would cancel the job.
    plugin.render(rate, BLOCK, &silence(BLOCK * 8), &[ParamEvent::Value { frame: 2 * BLOCK as u32, id: cancel, value: 1.0 }])?;
    std::thread::sleep(Duration::from_millis(200));
    let input = melody(rate);
    let end = input[0].len() as u32;
    let events = [ParamEvent::Value { frame: end - 2 * BLOCK as u32, id: generate, value: 1.0 }];
    plugin.render(rate, BLOCK, &input, &events)?;
    let w = process_until(std::slice::from_mut(&mut plugin), rate, BLOCK * 8, |d| finished_or_failed(&d[0]))?;
    let d = &w[0].diagnostics;
    ensure!(
        count(d, "jobs_finished") == 1 && count(d, "jobs_cancelled") == 0,
        "a press of Generate during processing should make one clip, with Cancel left on: {d}"
    );

    // 3. Generate still on: restarts and resets start no second job.
    let d = restart_repeatedly(&mut plugin, rate)?;
    ensure!(
        d["stage"] == "Done" && count(&d, "jobs_finished") == 1 && count(&d, "jobs_failed") == 0,
        "Generate left on started another job when processing restarted or was reset: {d}"
    );

    // 4. Released and pressed again while processing: a second job.
    let events = [
        ParamEvent::Value { frame: 0, id: cancel, value: 0.0 },
        ParamEvent::Value { frame: 2 * BLOCK as u32, id: generate, value: 0.0 },
        ParamEvent::Value { frame: 4 * BLOCK as u32, id: generate, value: 1.0 },
    ];
    plugin.render(rate, BLOCK, &silence(BLOCK * 8), &events)?;
    let w = process_until(std::slice::from_mut(&mut plugin), rate, BLOCK * 8, |d| {
        count(&d[0], "jobs_finished") + count(&d[0], "jobs_failed") + count(&d[0], "jobs_cancelled") >= 2
    })?;
    let d = &w[0].diagnostics;
    ensure!(count(d, "jobs_finished") == 2, "a second press did not make a second clip: {d}");
    println!("triggers: a loaded 'on', restarts and resets started nothing; two presses made two clips");
    Ok(())
}
