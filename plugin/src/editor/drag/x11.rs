//! The X11 drag source: XDND version 5 (freedesktop.org) on its own X connection and thread.
//!
//! Why it looks like this (checked under Xvfb with GTK and Ardour targets, see hosts.md):
//! - The host's window holds the pointer (the implicit grab of the button press that started
//!   the drag), so we do NOT grab it: we sample it with `QueryPointer` and the keyboard with
//!   `QueryKeymap` (Escape), which work whoever holds the grab.
//! - `XdndSelection` is owned by an unmapped InputOnly window of our own: it is never under the
//!   pointer, needs no visual, and disappears with our connection, releasing the selection.
//! - XdndEnter/XdndPosition go to the XdndAware window under the pointer (or its XdndProxy);
//!   a new position is sent only after the pointer moved and the previous one was answered by
//!   XdndStatus, as the protocol asks.
//! - On release over an accepting target: XdndDrop, answer its `SelectionRequest` with
//!   `text/uri-list`, wait for XdndFinished. Every wait has a time limit.

use super::{uri_list, DragError, DragOptions, DragStatus, Shared};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::errors::{ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, KeyButMask,
    PropMode, SelectionNotifyEvent, SelectionRequestEvent, Timestamp, Window, WindowClass,
    SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME, NONE};

/// The protocol version we speak; targets announcing less (but at least 3) get theirs.
const XDND_VERSION: u32 = 5;
const XK_ESCAPE: u32 = 0xff1b;
/// How long the source window outlives the drag. GDK (GTK 3) missed an XdndLeave in about one
/// cancel in three when the source window was destroyed right after it (measured under Xvfb;
/// none in 8 runs with 300 ms), leaving the target thinking the drag is still over it.
const LINGER: Duration = Duration::from_millis(300);

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        XdndAware,
        XdndProxy,
        XdndSelection,
        XdndEnter,
        XdndPosition,
        XdndStatus,
        XdndLeave,
        XdndDrop,
        XdndFinished,
        XdndActionCopy,
        TARGETS,
        UTF8_STRING,
        _NET_WM_NAME,
        URI_LIST: b"text/uri-list",
        MELODYGEN_DRAG_TIME,
    }
}

/// Connects to the display (`$DISPLAY` unless the options name one) on the calling thread, so a
/// missing display is reported at once, and runs the drag on a new thread. `own` is the plugin
/// editor's window, never treated as a drop target.
pub(super) fn start(
    paths: &[PathBuf],
    own: Option<Window>,
    options: DragOptions,
    shared: Arc<Shared>,
) -> Result<(), DragError> {
    let (conn, screen) =
        x11rb::connect(options.x11_display.as_deref()).map_err(|e| DragError::Unavailable {
            reason: format!("no X11 display to drag on ({e}); on Wayland this needs XWayland"),
        })?;
    let data = uri_list(paths).into_bytes();
    std::thread::Builder::new()
        .name("melodygen-drag".into())
        .spawn(move || match Source::new(conn, screen, data, own) {
            Ok(mut source) => {
                shared.finish(source.drive(&options, &shared).unwrap_or_else(x11_failure));
                source.linger(LINGER);
            }
            Err(e) => shared.finish(x11_failure(e)),
        })
        .map_err(|e| DragError::Platform(format!("could not start the drag thread: {e}")))?;
    Ok(())
}

fn x11_failure(e: impl std::fmt::Display) -> DragStatus {
    DragStatus::Failed(format!("the X11 connection failed during the drag: {e}"))
}

/// An XdndAware window under the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    /// The window messages are about (their `window` field).
    window: Window,
    /// Where they are sent: `window`, or its XdndProxy.
    send_to: Window,
    version: u32,
}

/// What the target said so far.
#[derive(Default)]
struct Replies {
    /// `Some(accepts)` once an XdndStatus answered the last position.
    status: Option<bool>,
    /// `Some(accepted)` once XdndFinished arrived.
    finished: Option<bool>,
    /// Another client took `XdndSelection` (started its own drag).
    lost_selection: bool,
    /// The target let a position go unanswered past the status timeout.
    silent: bool,
}

struct Source {
    conn: RustConnection,
    atoms: Atoms,
    root: Window,
    window: Window,
    /// Server time at which we took the selection; used in every message.
    time: Timestamp,
    escape: Option<u8>,
    /// The `text/uri-list` body.
    data: Vec<u8>,
    /// The plugin editor's window (XdndAware through baseview): not a place to drop the clip.
    own: Option<Window>,
    target: Option<Target>,
    replies: Replies,
}

impl Source {
    fn new(
        conn: RustConnection,
        screen: usize,
        data: Vec<u8>,
        own: Option<Window>,
    ) -> Result<Self, ReplyOrIdError> {
        let atoms = Atoms::new(&conn)?.reply()?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id()?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            COPY_FROM_PARENT,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let time = server_time(&conn, window, atoms.MELODYGEN_DRAG_TIME)?;
        conn.set_selection_owner(window, atoms.XdndSelection, time)?;
        let escape = escape_keycode(&conn)?;
        let mut source = Self {
            conn,
            atoms,
            root,
            window,
            time,
            escape,
            data,
            own,
            target: None,
            replies: Replies::default(),
        };
        if source
            .conn
            .get_selection_owner(atoms.XdndSelection)?
            .reply()?
            .owner
            != window
        {
            // Another drag took it in between; ours would be answered by someone else's data.
            source.replies.lost_selection = true;
        }
        Ok(source)
    }

    /// The drag, from the first pointer sample to the end of the drop. Returns the outcome.
    fn drive(&mut self, options: &DragOptions, shared: &Shared) -> Result<DragStatus, ReplyError> {
        let started = Instant::now();
        let mut last_pointer: Option<(i16, i16)> = None;
        // Set while a position awaits its XdndStatus; `moved` remembers a newer one to send.
        let mut status_since: Option<Instant> = None;
        let mut moved = false;

        let (x, y) = loop {
            self.pump_events()?;
            if self.replies.lost_selection {
                self.leave()?;
                return Ok(DragStatus::Failed(
                    "another application started a drag".into(),
                ));
            }
            if shared.cancel_requested() || self.escape_pressed()? {
                self.leave()?;
                return Ok(DragStatus::Cancelled);
            }
            if started.elapsed() > options.max_duration {
                self.leave()?;
                return Ok(DragStatus::Failed(
                    "the drag went on too long and was stopped".into(),
                ));
            }
            let pointer = self.conn.query_pointer(self.root)?.reply()?;
            let pos = (pointer.root_x, pointer.root_y);
            let buttons = KeyButMask::BUTTON1 | KeyButMask::BUTTON2 | KeyButMask::BUTTON3;
            if u16::from(pointer.mask) & u16::from(buttons) == 0 {
                break pos;
            }
            if last_pointer != Some(pos) {
                last_pointer = Some(pos);
                let under = self.find_target(pos.0, pos.1)?;
                if under.map(|t| t.window) != self.target.map(|t| t.window) {
                    self.leave()?;
                    status_since = None;
                    if let Some(t) = under {
                        self.enter(t)?;
                    }
                }
                moved = self.target.is_some();
            }
            if let Some(since) = status_since {
                if self.replies.status.is_some() {
                    status_since = None;
                } else if since.elapsed() > options.status_timeout {
                    // A silent target is treated as refusing; a later move may ask again.
                    self.replies.status = Some(false);
                    self.replies.silent = true;
                    status_since = None;
                }
            }
            if moved && status_since.is_none() {
                self.position(pos)?;
                status_since = Some(Instant::now());
                moved = false;
            }
            std::thread::sleep(options.poll_interval);
        };

        // Released, maybe somewhere not sampled yet. The target under the release point must have
        // seen that position and answered it before it gets the drop.
        if last_pointer != Some((x, y)) {
            let under = self.find_target(x, y)?;
            if under.map(|t| t.window) != self.target.map(|t| t.window) {
                self.leave()?;
                status_since = None;
                if let Some(t) = under {
                    self.enter(t)?;
                }
            }
            moved = self.target.is_some();
        }
        let Some(target) = self.target else {
            return Ok(DragStatus::Failed(
                "no drop target under the pointer: drop the clip on a track".into(),
            ));
        };
        // Let an answer still on its way arrive (a silent target gets no second chance).
        if let (Some(since), None) = (status_since, self.replies.status) {
            let left = options.status_timeout.saturating_sub(since.elapsed());
            if !self.wait(left, options.poll_interval, |r| r.status.is_some())? {
                self.replies.silent = true;
            }
        }
        if moved && !self.replies.silent {
            self.position((x, y))?;
            let answered = self.wait(options.status_timeout, options.poll_interval, |r| {
                r.status.is_some()
            })?;
            self.replies.silent = !answered;
        }
        if self.replies.status != Some(true) {
            self.leave()?;
            let why = if self.replies.silent {
                "did not answer the drag in time"
            } else {
                "does not accept the clip file"
            };
            return Ok(DragStatus::Failed(format!(
                "{} {why}",
                self.describe(target.window)
            )));
        }
        self.send(
            target,
            self.atoms.XdndDrop,
            [self.window, 0, self.time, 0, 0],
        )?;
        // The target now asks for the data (answered in pump_events) and then says it is done.
        if !self.wait(options.finish_timeout, options.poll_interval, |r| {
            r.finished.is_some()
        })? {
            self.target = None;
            return Ok(DragStatus::Failed(format!(
                "{} did not confirm the drop within {} s",
                self.describe(target.window),
                options.finish_timeout.as_secs_f32()
            )));
        }
        self.target = None;
        if self.replies.finished == Some(false) {
            return Ok(DragStatus::Failed(format!(
                "{} refused the clip file",
                self.describe(target.window)
            )));
        }
        Ok(DragStatus::Dropped {
            target: self.describe(target.window),
        })
    }

    /// Keeps the window (and `XdndSelection`) for `period` after the drag, still answering
    /// requests, so targets finish reading our last message before the window disappears.
    fn linger(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        while Instant::now() < deadline {
            if self.pump_events().is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Handles events until `done` holds or `timeout` passes; returns whether `done` held.
    fn wait(
        &mut self,
        timeout: Duration,
        poll: Duration,
        done: impl Fn(&Replies) -> bool,
    ) -> Result<bool, ReplyError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_events()?;
            if done(&self.replies) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(poll);
        }
    }

    /// Handles every queued event: target replies and requests for the data.
    fn pump_events(&mut self) -> Result<(), ConnectionError> {
        while let Some(event) = self.conn.poll_for_event()? {
            match event {
                Event::ClientMessage(msg) => {
                    let data = msg.data.as_data32();
                    let from_target = self
                        .target
                        .is_some_and(|t| data[0] == t.window || data[0] == t.send_to);
                    if !from_target {
                        continue;
                    }
                    if msg.type_ == self.atoms.XdndStatus {
                        self.replies.status = Some(data[1] & 1 == 1);
                        self.replies.silent = false;
                    } else if msg.type_ == self.atoms.XdndFinished {
                        // Before version 5 the target could not say it refused.
                        let version = self.target.map_or(XDND_VERSION, |t| t.version);
                        self.replies.finished = Some(version < 5 || data[1] & 1 == 1);
                    }
                }
                Event::SelectionRequest(req) if req.selection == self.atoms.XdndSelection => {
                    self.answer(&req)?
                }
                Event::SelectionClear(clear) if clear.selection == self.atoms.XdndSelection => {
                    self.replies.lost_selection = true;
                }
                // X errors (a target window that vanished) end nothing: its replies just stop.
                _ => {}
            }
        }
        Ok(())
    }

    /// Gives the requestor the file list (or the list of types), as ICCCM's selection rules say.
    fn answer(&mut self, req: &SelectionRequestEvent) -> Result<(), ConnectionError> {
        // Obsolete clients pass no property: use the target atom, as ICCCM allows.
        let property = if req.property == NONE {
            req.target
        } else {
            req.property
        };
        let supplied = if req.target == self.atoms.URI_LIST {
            self.conn.change_property8(
                PropMode::REPLACE,
                req.requestor,
                property,
                self.atoms.URI_LIST,
                &self.data,
            )?;
            true
        } else if req.target == self.atoms.TARGETS {
            let types = [self.atoms.TARGETS, self.atoms.URI_LIST];
            self.conn.change_property32(
                PropMode::REPLACE,
                req.requestor,
                property,
                AtomEnum::ATOM,
                &types,
            )?;
            true
        } else {
            false
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: req.time,
            requestor: req.requestor,
            selection: req.selection,
            target: req.target,
            property: if supplied { property } else { NONE },
        };
        self.conn
            .send_event(false, req.requestor, EventMask::NO_EVENT, notify)?;
        self.conn.flush()
    }

    /// The innermost XdndAware window at root position (x, y), walking down from the root the
    /// way the pointer would hit windows (toplevel, window-manager frame, client...).
    fn find_target(&self, x: i16, y: i16) -> Result<Option<Target>, ReplyError> {
        let mut window = self.root;
        for _ in 0..32 {
            let child = match self
                .conn
                .translate_coordinates(self.root, window, x, y)?
                .reply()
            {
                Ok(r) => r.child,
                Err(ReplyError::X11Error(_)) => return Ok(None), // the window went away
                Err(e) => return Err(e),
            };
            if child == NONE || Some(child) == self.own {
                return Ok(None);
            }
            if let Some(target) = self.aware(child)? {
                return Ok(Some(target));
            }
            window = child;
        }
        Ok(None)
    }

    /// `window` as a target if it (or its proxy) announces XdndAware version 3 or newer.
    fn aware(&self, window: Window) -> Result<Option<Target>, ReplyError> {
        // XdndProxy counts only if the proxy names itself, which tells a live proxy from a stale id.
        let send_to =
            match self.property32(window, self.atoms.XdndProxy, AtomEnum::WINDOW.into())? {
                Some(proxy)
                    if self.property32(proxy, self.atoms.XdndProxy, AtomEnum::WINDOW.into())?
                        == Some(proxy) =>
                {
                    proxy
                }
                _ => window,
            };
        Ok(
            match self.property32(send_to, self.atoms.XdndAware, AtomEnum::ATOM.into())? {
                Some(version) if version >= 3 => Some(Target {
                    window,
                    send_to,
                    version: version.min(XDND_VERSION),
                }),
                _ => None,
            },
        )
    }

    /// The first 32-bit value of a property, None when absent, of another type, or the window
    /// is gone.
    fn property32(
        &self,
        window: Window,
        property: Atom,
        type_: Atom,
    ) -> Result<Option<u32>, ReplyError> {
        match self
            .conn
            .get_property(false, window, property, type_, 0, 1)?
            .reply()
        {
            Ok(reply) => Ok(reply.value32().and_then(|mut v| v.next())),
            Err(ReplyError::X11Error(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn enter(&mut self, target: Target) -> Result<(), ConnectionError> {
        self.target = Some(target);
        self.replies = Replies {
            lost_selection: self.replies.lost_selection,
            ..Replies::default()
        };
        // One type, so the "more than three types" bit stays clear and no XdndTypeList is needed.
        self.send(
            target,
            self.atoms.XdndEnter,
            [self.window, target.version << 24, self.atoms.URI_LIST, 0, 0],
        )
    }

    fn position(&mut self, (x, y): (i16, i16)) -> Result<(), ConnectionError> {
        let Some(target) = self.target else {
            return Ok(());
        };
        self.replies.status = None;
        let packed = (u32::from(x as u16) << 16) | u32::from(y as u16);
        self.send(
            target,
            self.atoms.XdndPosition,
            [self.window, 0, packed, self.time, self.atoms.XdndActionCopy],
        )
    }

    /// Tells the current target (if any) that the drag left it.
    fn leave(&mut self) -> Result<(), ConnectionError> {
        if let Some(target) = self.target.take() {
            self.send(target, self.atoms.XdndLeave, [self.window, 0, 0, 0, 0])?;
        }
        Ok(())
    }

    fn send(&self, target: Target, message: Atom, data: [u32; 5]) -> Result<(), ConnectionError> {
        let event = ClientMessageEvent::new(32, target.window, message, data);
        self.conn
            .send_event(false, target.send_to, EventMask::NO_EVENT, event)?;
        self.conn.flush()
    }

    fn escape_pressed(&self) -> Result<bool, ReplyError> {
        let Some(code) = self.escape else {
            return Ok(false);
        };
        let keys = self.conn.query_keymap()?.reply()?.keys;
        Ok(keys[usize::from(code / 8)] & (1 << (code % 8)) != 0)
    }

    /// A name for the user: the target's toplevel title, else its id.
    fn describe(&self, window: Window) -> String {
        for (property, type_) in [
            (self.atoms._NET_WM_NAME, self.atoms.UTF8_STRING),
            (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
        ] {
            if let Ok(Ok(reply)) = self
                .conn
                .get_property(false, window, property, type_, 0, 256)
                .map(|c| c.reply())
            {
                if !reply.value.is_empty() {
                    return format!("\"{}\"", String::from_utf8_lossy(&reply.value));
                }
            }
        }
        format!("X11 window 0x{window:x}")
    }
}

impl Drop for Source {
    /// Destroying the window releases `XdndSelection`; errors no longer matter here.
    fn drop(&mut self) {
        let _ = self.conn.destroy_window(self.window);
        let _ = self.conn.flush();
    }
}

/// The server's current time, read from the PropertyNotify of an empty append to our window:
/// ICCCM forbids CurrentTime for selection ownership.
fn server_time(conn: &RustConnection, window: Window, atom: Atom) -> Result<Timestamp, ReplyError> {
    conn.change_property8(PropMode::APPEND, window, atom, AtomEnum::STRING, &[])?;
    conn.flush()?;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match conn.poll_for_event()? {
            Some(Event::PropertyNotify(ev)) if ev.window == window && ev.atom == atom => {
                return Ok(ev.time)
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    Ok(CURRENT_TIME)
}

/// The keycode that produces Escape in the current keyboard map, if any.
fn escape_keycode(conn: &RustConnection) -> Result<Option<u8>, ReplyError> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(map.keysyms_per_keycode).max(1);
    Ok(map
        .keysyms
        .chunks(per)
        .position(|syms| syms.contains(&XK_ESCAPE))
        .map(|i| min + i as u8))
}
