//! The X server and window manager: a private Xvfb display with openbox, and xdotool as the
//! user's hand. A missing tool fails the test (it is never skipped).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;

fn require_tool(name: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    assert!(
        found,
        "'{name}' is not installed (Debian package {package}); the drag test needs it"
    );
}

/// Kills and reaps a child when dropped, so a failing assertion leaves no X server behind.
pub struct Reaped(pub Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Display {
    pub name: String,
    // Dropped in order: window manager first, then the server.
    _wm: Reaped,
    _xvfb: Reaped,
}

pub fn start_display() -> Display {
    require_tool("Xvfb", "xvfb");
    require_tool("openbox", "openbox");
    require_tool("xdotool", "xdotool");
    // -displayfd picks a free display number itself and writes it to fd 1 (our pipe): no race
    // with other servers on the machine.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("could not start Xvfb");
    let stdout = xvfb.stdout.take().unwrap();
    let xvfb = Reaped(xvfb);
    let number = read_line_within(stdout, Duration::from_secs(15))
        .expect("Xvfb did not report its display number");
    let name = format!(":{}", number.trim());

    let wm = Reaped(
        Command::new("openbox")
            .env("DISPLAY", &name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("could not start openbox"),
    );
    // openbox is up once it announces itself on the root window.
    let (conn, screen) = x11rb::connect(Some(&name)).expect("cannot connect to the new Xvfb");
    let root = conn.setup().roots[screen].root;
    let check = conn
        .intern_atom(false, b"_NET_SUPPORTING_WM_CHECK")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    wait_until(Duration::from_secs(15), "openbox to start", || {
        let reply = conn.get_property(
            false,
            root,
            check,
            x11rb::protocol::xproto::AtomEnum::WINDOW,
            0,
            1,
        );
        reply.unwrap().reply().unwrap().value_len > 0
    });
    Display {
        name,
        _wm: wm,
        _xvfb: xvfb,
    }
}

fn read_line_within(
    stream: impl std::io::Read + Send + 'static,
    timeout: Duration,
) -> Option<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(timeout)
        .ok()
        .filter(|l| !l.trim().is_empty())
}

pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn xdotool(display: &Display, args: &[&str]) {
    let status = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", &display.name)
        .status()
        .unwrap();
    assert!(status.success(), "xdotool {args:?} failed: {status}");
}
