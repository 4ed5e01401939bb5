//! Drag-out of a clip file on X11, end to end, on a private Xvfb display (no outer xvfb-run).
//!
//! Cast: Xvfb + openbox; a GTK3 drop target (tests/hosts/gtk_drop_target.py, standing in for a
//! DAW's timeline: GTK answers the XDND protocol and GLib decodes the URIs); a "plugin window"
//! opened here with x11rb whose button press starts `melodygen::drag`, like the editor's handle;
//! xdotool as the user's hand (press, move in steps, release / Escape).
//!
//! Prerequisites (Debian: xvfb openbox xdotool python3-gi gir1.2-gtk-3.0, in xtask/src/deps.rs):
//! a missing one FAILS the test, it is never skipped.
//!
//! This file holds the tests; the scene they play in (display, drop target, plugin window, clip)
//! is built by the module in `drag_x11/`.
#![cfg(all(unix, not(target_os = "macos")))]

#[path = "drag_x11/mod.rs"]
mod scene;

use melodygen::drag::{self, DragStatus};
use scene::{events_within, next_event, options, press_and_drag, scene, xdotool, TARGET_TITLE};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One display at a time: the tests drive a pointer and 2 cores are shared with other builds.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn dropping_on_a_gtk_window_delivers_the_clip_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    let started = Instant::now();
    let session = press_and_drag(&s.display, &s.harness, s.target.centre);
    xdotool(&s.display, &["mouseup", "1"]);

    let status = session.wait(Duration::from_secs(10));
    let elapsed = started.elapsed();
    match &status {
        DragStatus::Dropped { target } => {
            assert!(target.contains(TARGET_TITLE), "dropped on {target}")
        }
        other => panic!("expected a drop, got {other:?}"),
    }
    let drop = next_event(&s.target.events, "drop", Duration::from_secs(5))
        .expect("the GTK target received no drop");
    let uris: Vec<&str> = drop["uris"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let paths: Vec<&str> = drop["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let clip = std::fs::canonicalize(&s.clip).unwrap();
    // GLib decoded our URI back to exactly the clip's path.
    assert_eq!(paths, [clip.to_str().unwrap()], "uris {uris:?}");
    assert_eq!(uris, [drag::file_uri(&clip).as_str()]);
    // text/uri-list framing: one URI per line, CRLF-terminated.
    assert_eq!(drop["raw"].as_str().unwrap(), format!("{}\r\n", uris[0]));

    // The file the target got decodes to the audio that was written.
    let mut reader = hound::WavReader::open(paths[0]).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 48_000)
    );
    let decoded: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(decoded, s.samples);
    eprintln!(
        "drop delivered in {:.2} s (25 pointer steps of 15 ms)",
        elapsed.as_secs_f32()
    );
}

#[test]
fn escape_cancels_the_drag_and_the_target_gets_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    let session = press_and_drag(&s.display, &s.harness, s.target.centre);
    // The drag reached the target before it is cancelled, so "nothing dropped" means something.
    next_event(&s.target.events, "motion", Duration::from_secs(5))
        .expect("the drag never reached the GTK target");
    // Held like a person's key press (the source samples the keyboard every few ms).
    xdotool(&s.display, &["keydown", "Escape"]);
    std::thread::sleep(Duration::from_millis(150));
    xdotool(&s.display, &["keyup", "Escape"]);
    assert_eq!(session.wait(Duration::from_secs(5)), DragStatus::Cancelled);
    xdotool(&s.display, &["mouseup", "1"]);

    // GTK is told the drag left (this caught GDK missing XdndLeave when our source window
    // vanished right after it; see LINGER in plugin/src/editor/drag/x11.rs) and never gets a drop.
    let leave = next_event(&s.target.events, "leave", Duration::from_secs(10));
    assert!(leave.is_some(), "the target was not told the drag left");
    let events = events_within(&s.target.events, Duration::from_millis(2000));
    assert!(
        !events.iter().any(|e| e["event"] == "drop"),
        "the target received a drop after Escape: {events:?}"
    );
    assert!(s.clip.exists());
}

#[test]
fn dropping_on_a_window_without_xdnd_fails_without_hanging() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    // Pass over the GTK target on the way, then release over the plain window.
    let session = press_and_drag(&s.display, &s.harness, s.target.centre);
    next_event(&s.target.events, "motion", Duration::from_secs(5))
        .expect("the drag never reached the GTK target");
    let (from, to) = (s.target.centre, s.harness.plain);
    for i in 1..=10 {
        let (x, y) = (
            from.0 + (to.0 - from.0) * i / 10,
            from.1 + (to.1 - from.1) * i / 10,
        );
        xdotool(&s.display, &["mousemove", &x.to_string(), &y.to_string()]);
        std::thread::sleep(Duration::from_millis(15));
    }
    let released = Instant::now();
    xdotool(&s.display, &["mouseup", "1"]);
    let status = session.wait(Duration::from_secs(10));
    let took = released.elapsed();
    match &status {
        DragStatus::Failed(why) => assert!(why.contains("no drop target"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // No target: nothing to wait for, so the answer is immediate (well under the status timeout).
    assert!(
        took < options(&s.display.name).status_timeout,
        "took {took:?} to give up"
    );
    let left = next_event(&s.target.events, "leave", Duration::from_secs(10));
    assert!(left.is_some(), "the GTK target was not left");
    let events = events_within(&s.target.events, Duration::from_millis(1000));
    assert!(!events.iter().any(|e| e["event"] == "drop"), "{events:?}");
    eprintln!(
        "gave up {:.0} ms after the release",
        took.as_secs_f64() * 1000.0
    );
}

#[test]
fn a_target_that_never_answers_is_given_up_after_the_status_timeout() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    let session = press_and_drag(&s.display, &s.harness, s.harness.silent);
    let released = Instant::now();
    xdotool(&s.display, &["mouseup", "1"]);
    let status = session.wait(Duration::from_secs(30));
    let took = released.elapsed();
    match &status {
        DragStatus::Failed(why) => assert!(why.contains("did not answer"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let timeout = options(&s.display.name).status_timeout;
    assert!(
        took <= timeout + Duration::from_secs(2),
        "took {took:?} to give up"
    );
    // The window was spoken to by the protocol's rules: entered, asked, and left; never dropped on.
    std::thread::sleep(Duration::from_millis(300));
    let got: Vec<String> = s.harness.silent_got.try_iter().collect();
    assert_eq!(
        got.first().map(String::as_str),
        Some("XdndEnter"),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m == "XdndPosition"), "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("XdndLeave"), "{got:?}");
    assert!(!got.iter().any(|m| m == "XdndDrop"), "{got:?}");
    let positions = got.iter().filter(|m| *m == "XdndPosition").count();
    eprintln!("silent target: gave up {:.2} s after the release; {positions} positions sent over {} pointer steps", took.as_secs_f32(), 25);
}

#[test]
fn escape_over_a_target_sends_it_leave_and_never_drop() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    let session = press_and_drag(&s.display, &s.harness, s.harness.silent);
    xdotool(&s.display, &["keydown", "Escape"]);
    std::thread::sleep(Duration::from_millis(150));
    xdotool(&s.display, &["keyup", "Escape"]);
    assert_eq!(session.wait(Duration::from_secs(5)), DragStatus::Cancelled);
    xdotool(&s.display, &["mouseup", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<String> = s.harness.silent_got.try_iter().collect();
    assert_eq!(
        got.first().map(String::as_str),
        Some("XdndEnter"),
        "{got:?}"
    );
    assert_eq!(got.last().map(String::as_str), Some("XdndLeave"), "{got:?}");
    assert!(!got.iter().any(|m| m == "XdndDrop"), "{got:?}");
}

#[test]
fn releasing_over_the_plugin_window_itself_drops_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = scene();
    let (x, y) = s.harness.handle;
    let session = press_and_drag(&s.display, &s.harness, (x + 60, y + 30));
    xdotool(&s.display, &["mouseup", "1"]);
    match session.wait(Duration::from_secs(10)) {
        DragStatus::Failed(why) => assert!(why.contains("no drop target"), "{why}"),
        other => panic!("expected no target, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(300));
    let got: Vec<String> = s.harness.own_got.try_iter().collect();
    assert!(
        got.is_empty(),
        "the plugin window was treated as a drop target: {got:?}"
    );
}
