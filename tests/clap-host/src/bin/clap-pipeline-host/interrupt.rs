//! Steps that interrupt a running job: "Cancel" by parameter, removing the instance, and the host
//! changing its sample rate.

use crate::harness::{
    clips, configured, count, default_settings, finished_or_failed, generate_and_wait,
    long_settings, press, process_until, silence, start_long_job, BLOCK,
};
use crate::heard::{check_heard, read_wav};
use anyhow::{ensure, Context, Result};
use clap_test_host::instance::open_entry;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// "Cancel" by parameter mid-job: the job stops promptly, the host keeps running, and the next
/// job works.
pub fn cancel(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugin = configured(&entry, "cancel me", long_settings())?;
    start_long_job(&mut plugin, rate)?;
    let t = Instant::now();
    let events = press(&mut plugin, "Cancel", 0)?;
    plugin.render(rate, BLOCK, &silence(BLOCK * 4), &events)?;
    let w = process_until(std::slice::from_mut(&mut plugin), rate, BLOCK, |d| {
        finished_or_failed(&d[0])
    })?;
    let d = &w[0].diagnostics;
    ensure!(
        count(d, "jobs_cancelled") == 1 && count(d, "jobs_finished") == 0,
        "after cancel: {d}"
    );
    println!("cancelled in {:.2} s", t.elapsed().as_secs_f64());
    ensure!(
        t.elapsed() < Duration::from_secs(10),
        "cancelling took {:?}",
        t.elapsed()
    );
    ensure!(
        clips(&mut plugin)?.is_empty(),
        "a cancelled job left a clip"
    );
    Ok(())
}

/// Removing an instance mid-job neither crashes nor stalls the host; another instance then works.
pub fn remove(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut doomed = configured(&entry, "removed mid-job", long_settings())?;
    start_long_job(&mut doomed, rate)?;
    let t = Instant::now();
    drop(doomed);
    println!(
        "instance removed mid-job in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "removing the instance stalled for {:?}",
        t.elapsed()
    );
    let mut next = configured(&entry, "after removal", default_settings(3))?;
    let w = generate_and_wait(&mut next, rate)?;
    ensure!(
        count(&w.diagnostics, "jobs_finished") == 1,
        "job after removal: {}",
        w.diagnostics
    );
    Ok(())
}

/// The host changes its rate while a job runs: the clip arrives at the new rate and is heard.
pub fn rate_change(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let mut plugin = configured(
        &entry,
        "rate change",
        json!({"length": {"seconds": 10.0}, "seed": 5, "preview_while_generating": false}),
    )?;
    start_long_job(&mut plugin, 44_100.0)?;
    let w = process_until(
        std::slice::from_mut(&mut plugin),
        48_000.0,
        BLOCK * 8,
        |d| finished_or_failed(&d[0]),
    )?;
    ensure!(
        count(&w[0].diagnostics, "jobs_finished") == 1,
        "after the rate change: {}",
        w[0].diagnostics
    );
    let c = clips(&mut plugin)?;
    let path = PathBuf::from(c[0]["path"].as_str().context("no path")?);
    let (file_rate, audio) = read_wav(&path)?;
    ensure!(
        file_rate == 48_000,
        "clip saved at {file_rate} Hz after the host moved to 48000"
    );
    let mut out = w.into_iter().next().unwrap().output;
    let more = plugin.render(48_000.0, BLOCK, &silence(audio[0].len() + BLOCK), &[])?;
    out[0].extend_from_slice(&more[0]);
    out[1].extend_from_slice(&more[1]);
    check_heard(&out, &audio, "after 44100 → 48000")
}
