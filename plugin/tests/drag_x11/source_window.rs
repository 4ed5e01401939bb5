//! The "plugin window": pressing anywhere in it is pressing the clip's drag handle, which starts
//! `melodygen::drag` as the editor does. Beside it, a plain window that is not XdndAware and a
//! "silent" one that announces XdndAware but never answers; the XDND messages those and the
//! plugin window receive are recorded.

use super::display::{wait_until, xdotool, Display};
use super::options;
use melodygen::drag::{self, DragSession, DragStatus};
use raw_window_handle::{
    HandleError, HasWindowHandle, RawWindowHandle, WindowHandle, XcbWindowHandle,
};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;
use x11rb::connection::Connection;
use x11rb::properties::{WmSizeHints, WmSizeHintsSpecification};
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

pub struct XcbWindow(u32);
impl HasWindowHandle for XcbWindow {
    fn window_handle(&self) -> Result<WindowHandle<'_>, HandleError> {
        let raw = RawWindowHandle::Xcb(XcbWindowHandle::new(NonZeroU32::new(self.0).unwrap()));
        // SAFETY: the window outlives every use (the source only reads which kind of handle it is).
        Ok(unsafe { WindowHandle::borrow_raw(raw) })
    }
}

pub struct Harness {
    /// Root coordinates of the handle (the source window's centre), of a plain window that is
    /// not XdndAware, and of a "silent" window that announces XdndAware but never answers.
    pub handle: (i32, i32),
    pub plain: (i32, i32),
    pub silent: (i32, i32),
    /// The XDND messages the silent window received, by atom name.
    pub silent_got: Receiver<String>,
    /// The XDND messages the "plugin window" itself received (it is XdndAware, like baseview's).
    pub own_got: Receiver<String>,
    sessions: Receiver<Result<DragSession, drag::DragError>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start_harness(display: &Display, clip: PathBuf) -> Harness {
    let (conn, screen) = x11rb::connect(Some(&display.name)).unwrap();
    let root = conn.setup().roots[screen].root;
    let make = |x: i32, y: i32, w: u16, h: u16, title: &str| -> Window {
        let id = conn.generate_id().unwrap();
        let aux = CreateWindowAux::new()
            .background_pixel(conn.setup().roots[screen].white_pixel)
            .event_mask(
                EventMask::BUTTON_PRESS | EventMask::EXPOSURE | EventMask::STRUCTURE_NOTIFY,
            );
        conn.create_window(
            0,
            id,
            root,
            x as i16,
            y as i16,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )
        .unwrap();
        conn.change_property8(
            PropMode::REPLACE,
            id,
            x11rb::protocol::xproto::AtomEnum::WM_NAME,
            x11rb::protocol::xproto::AtomEnum::STRING,
            title.as_bytes(),
        )
        .unwrap();
        // A user-specified position, so openbox puts the windows where the test expects them.
        let hints = WmSizeHints {
            position: Some((WmSizeHintsSpecification::UserSpecified, x, y)),
            ..WmSizeHints::new()
        };
        hints.set_normal_hints(&conn, id).unwrap();
        conn.map_window(id).unwrap();
        id
    };
    let source = make(60, 60, 300, 200, "MelodyGen plugin window (drag source)");
    let plain = make(700, 560, 300, 150, "plain window (not XdndAware)");
    let silent = make(60, 450, 300, 150, "silent XDND target");
    let aware = conn
        .intern_atom(false, b"XdndAware")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    // The silent target, and the plugin window as baseview makes it: both announce XDND 5.
    for window in [silent, source] {
        conn.change_property32(
            PropMode::REPLACE,
            window,
            aware,
            x11rb::protocol::xproto::AtomEnum::ATOM,
            &[5],
        )
        .unwrap();
    }
    conn.flush().unwrap();
    let centre = |w: Window, width: i32, height: i32| {
        let mut origin = (0, 0);
        wait_until(
            Duration::from_secs(10),
            "the harness windows to be mapped",
            || {
                let attrs = conn.get_window_attributes(w).unwrap().reply().unwrap();
                let t = conn
                    .translate_coordinates(w, root, 0, 0)
                    .unwrap()
                    .reply()
                    .unwrap();
                origin = (i32::from(t.dst_x), i32::from(t.dst_y));
                attrs.map_state == x11rb::protocol::xproto::MapState::VIEWABLE
            },
        );
        (origin.0 + width / 2, origin.1 + height / 2)
    };
    // Let openbox finish placing (reparenting moves the origin once).
    std::thread::sleep(Duration::from_millis(300));
    let handle = centre(source, 300, 200);
    let plain_centre = centre(plain, 300, 150);
    let silent_centre = centre(silent, 300, 150);
    let (got_tx, silent_got) = channel();
    let (own_tx, own_got) = channel();

    let (tx, sessions) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_thread = stop.clone();
    let options = options(&display.name);
    let thread = std::thread::spawn(move || {
        while !stop_thread.load(Ordering::Relaxed) {
            // An error here is the server going away at the end of a test.
            let Ok(event) = conn.poll_for_event() else {
                break;
            };
            match event {
                // What the editor's handle does on a drag: start it while the button is held.
                Some(Event::ButtonPress(press)) if press.event == source => {
                    let _ = tx.send(drag::start_file_drag_with(
                        std::slice::from_ref(&clip),
                        &XcbWindow(source),
                        &options,
                    ));
                }
                Some(Event::ClientMessage(msg)) if msg.window == silent || msg.window == source => {
                    let name = conn.get_atom_name(msg.type_).unwrap().reply().unwrap().name;
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let _ = if msg.window == silent {
                        got_tx.send(name)
                    } else {
                        own_tx.send(name)
                    };
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Harness {
        handle,
        plain: plain_centre,
        silent: silent_centre,
        silent_got,
        own_got,
        sessions,
        stop,
        thread: Some(thread),
    }
}

/// Presses on the handle and moves, in steps, to `to`; returns the session the press started.
pub fn press_and_drag(display: &Display, harness: &Harness, to: (i32, i32)) -> DragSession {
    let from = harness.handle;
    xdotool(
        display,
        &["mousemove", &from.0.to_string(), &from.1.to_string()],
    );
    xdotool(display, &["mousedown", "1"]);
    let session = harness
        .sessions
        .recv_timeout(Duration::from_secs(5))
        .expect("the press on the handle did not reach the source window")
        .expect("start_file_drag failed");
    assert_eq!(session.status(), DragStatus::Dragging);
    let steps = 25;
    for i in 1..=steps {
        let x = from.0 + (to.0 - from.0) * i / steps;
        let y = from.1 + (to.1 - from.1) * i / steps;
        xdotool(display, &["mousemove", &x.to_string(), &y.to_string()]);
        std::thread::sleep(Duration::from_millis(15));
    }
    session
}
