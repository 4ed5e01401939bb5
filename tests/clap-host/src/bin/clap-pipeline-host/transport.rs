//! The step in a host that reports a transport: capture and preview follow the song position.

use crate::harness::{
    clips, configured, count, default_settings, diagnostics, finished_or_failed, melody,
    press_generate_before_end, silence, BLOCK, JOB_TIMEOUT,
};
use crate::heard::read_wav;
use anyhow::{ensure, Context, Result};
use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::utils::{BeatTime, SecondsTime};
use clap_test_host::instance::open_entry;
use clap_test_host::ParamEvent;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tempo of the follow-transport song (4/4).
const TEMPO: f64 = 120.0;

/// The transport of a 4/4 song at [`TEMPO`], at `seconds`.
fn transport(playing: bool, seconds: f64) -> TransportEvent {
    let beats = seconds * TEMPO / 60.0;
    let bar = (beats / 4.0).floor();
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(beats),
        song_pos_seconds: SecondsTime::from_float(seconds),
        tempo: TEMPO,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_int(0),
        loop_end_beats: BeatTime::from_int(0),
        loop_start_seconds: SecondsTime::from_int(0),
        loop_end_seconds: SecondsTime::from_int(0),
        bar_start: BeatTime::from_float(bar * 4.0),
        bar_number: bar as i32,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// Default modes (capture and preview follow the transport) in a host that reports one: the
/// take starts when playback starts, the clip is anchored there, is silent while the transport
/// is stopped and plays sample-aligned against the song when it plays again, looping on request.
pub fn follow_transport(bundle: &Path) -> Result<()> {
    let entry = open_entry(bundle)?;
    let rate = 48_000.0;
    let mut plugin = configured(&entry, "follow the song", default_settings(21))?;
    let stopped_at = |s: f64| move |_: usize| Some(transport(false, s));
    let playing_from = |s: f64| move |frame: usize| Some(transport(true, s + frame as f64 / rate));

    // Stopped at 0 with material coming in: not part of any take.
    let noise = clap_test_host::steps::noise(rate as usize / 2, 5);
    plugin.render_with_transport(rate, BLOCK, &noise, &[], &stopped_at(0.0))?;
    // Play from 3 s (beat 6, bar 1) with the melody; press Generate near its end; then stop.
    let anchor = 3.0;
    let input = melody(rate);
    let events = press_generate_before_end(&mut plugin, &input)?;
    plugin.render_with_transport(rate, BLOCK, &input, &events, &playing_from(anchor))?;
    let start = Instant::now();
    loop {
        let out = plugin.render_with_transport(
            rate,
            BLOCK,
            &silence(BLOCK * 8),
            &[],
            &stopped_at(anchor + 2.0),
        )?;
        ensure!(
            out.iter().flatten().all(|s| *s == 0.0),
            "the clip played while the transport was stopped"
        );
        let d = diagnostics(&mut plugin)?;
        if finished_or_failed(&d) {
            ensure!(
                count(&d, "jobs_finished") == 1,
                "the job did not finish: {d}"
            );
            break;
        }
        ensure!(
            start.elapsed() < JOB_TIMEOUT,
            "no result after {JOB_TIMEOUT:?}: {d}"
        );
    }
    // Let the dispatcher hand the clip over (it polls every 20 ms), still stopped.
    for _ in 0..20 {
        plugin.render_with_transport(
            rate,
            BLOCK,
            &silence(BLOCK),
            &[],
            &stopped_at(anchor + 2.0),
        )?;
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = clips(&mut plugin)?;
    let meta = &c[0];
    let a = &meta["anchor"];
    ensure!(
        a["seconds"] == anchor && a["beats"] == 6.0 && a["bar"] == 1 && a["tempo"] == TEMPO,
        "capture anchor {a}, expected 3 s / beat 6 / bar 1 / 120 BPM"
    );
    let (_, audio) = read_wav(&PathBuf::from(meta["path"].as_str().context("no path")?))?;
    let n = audio[0].len();

    // Play again from half a second before the anchor: silence, then the clip sample-aligned to
    // the song position it was captured at, then silence after its end.
    let lead = (rate * 0.5) as usize;
    let out = plugin.render_with_transport(
        rate,
        BLOCK,
        &silence(lead + n + lead),
        &[],
        &playing_from(anchor - 0.5),
    )?;
    let mut worst = 0f32;
    for ch in 0..2 {
        for (k, &y) in out[ch].iter().enumerate() {
            let want = if (lead..lead + n).contains(&k) {
                audio[ch][k - lead]
            } else {
                0.0
            };
            worst = worst.max((y - want).abs());
        }
    }
    ensure!(
        worst < 1e-6,
        "following the transport: output differs from the aligned clip by {worst}"
    );
    println!("follow transport: clip frame 0 at song position {anchor} s exactly; {n} frames, max error {worst:e}");

    // Looping: from one clip length after the anchor, the clip plays again from its start.
    let loop_id = plugin.param_named("Loop Preview")?.id;
    let events = [ParamEvent::Value {
        frame: 0,
        id: loop_id,
        value: 1.0,
    }];
    let out = plugin.render_with_transport(
        rate,
        BLOCK,
        &silence(n),
        &events,
        &playing_from(anchor + n as f64 / rate),
    )?;
    let worst = (0..2)
        .flat_map(|ch| out[ch].iter().zip(&audio[ch]).map(|(y, x)| (y - x).abs()))
        .fold(0f32, f32::max);
    ensure!(
        worst < 1e-6,
        "looping: the second pass differs from the clip by {worst}"
    );
    Ok(())
}
