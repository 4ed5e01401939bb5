//! The GTK drop target (tests/hosts/gtk_drop_target.py), standing in for a DAW's timeline: it
//! prints what it is told (ready, motion, leave, drop) as JSON lines, read here as events.

use super::display::{Display, Reaped};
use super::TARGET_TITLE;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct DropTarget {
    pub events: Receiver<Value>,
    /// Root coordinates of the window's centre.
    pub centre: (i32, i32),
    _child: Reaped,
}

pub fn start_drop_target(display: &Display) -> DropTarget {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hosts/gtk_drop_target.py");
    // The GTK bindings are Debian packages for the system Python, not pip packages.
    let python =
        std::env::var("MELODYGEN_GTK_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import gi; gi.require_version('Gtk', '3.0')"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{python} cannot import GTK 3 (Debian packages python3-gi gir1.2-gtk-3.0; or set MELODYGEN_GTK_PYTHON): {probe:?}"
    );
    let mut child = Command::new(&python)
        .arg(&script)
        .args([
            "--x",
            "700",
            "--y",
            "200",
            "--timeout",
            "90",
            "--title",
            TARGET_TITLE,
        ])
        .env("DISPLAY", &display.name)
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("could not start the GTK drop target");
    let stdout = child.stdout.take().unwrap();
    let child = Reaped(child);
    let (tx, events) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("drop target printed {line:?}: {e}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let ready = next_event(&events, "ready", Duration::from_secs(20))
        .expect("the GTK drop target did not show its window");
    let num = |k: &str| ready[k].as_i64().unwrap() as i32;
    let centre = (num("x") + num("width") / 2, num("y") + num("height") / 2);
    DropTarget {
        events,
        centre,
        _child: child,
    }
}

/// The next event of `kind`, skipping others; None on timeout.
pub fn next_event(events: &Receiver<Value>, kind: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(v) if v["event"] == kind => return Some(v),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Every event that arrives within `period`.
pub fn events_within(events: &Receiver<Value>, period: Duration) -> Vec<Value> {
    let deadline = Instant::now() + period;
    let mut seen = Vec::new();
    while let Ok(v) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(v);
    }
    seen
}
