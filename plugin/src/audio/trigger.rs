//! Edge detection for the momentary trigger parameters ("Generate", "Cancel").
//!
//! A trigger starts something only when it *changes* from off to on while the host processes.
//! The value it has when processing (re)starts is a baseline, not a press: a project saved with
//! the parameter on, a host that restarts processing or calls `reset()` with it on, must not
//! start a job. So the detector forgets nothing to "off": [`Trigger::rearm`] takes the value of
//! the moment as the baseline (the plugin's `reset()`, which every host calls after activating),
//! and a detector that was never armed takes the first value it sees. State loads never move the
//! triggers at all (`MelodyGen::filter_state` drops them from a loaded state), so a load while
//! processing cannot look like a press either.

/// One trigger's last seen value; `None` until a baseline is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trigger {
    last: Option<bool>,
}

impl Trigger {
    /// A detector with no baseline yet: the first value seen becomes it. Realtime-safe.
    pub const fn new() -> Self {
        Self { last: None }
    }

    /// Takes `on` as the baseline: only a change from here on is an edge. Realtime-safe (a
    /// store); called from `reset()`, on whichever thread the host calls it.
    pub fn rearm(&mut self, on: bool) {
        self.last = Some(on);
    }

    /// Whether `on` is a rising edge (off → on) against the last value seen, which it then
    /// becomes. Without a baseline it only takes one. Realtime-safe (no allocation, no lock).
    pub fn rose(&mut self, on: bool) -> bool {
        let rose = on && self.last == Some(false);
        self.last = Some(on);
        rose
    }
}

#[cfg(test)]
mod tests {
    use super::Trigger;

    #[test]
    fn only_a_change_during_processing_is_an_edge() {
        // On from the start (a project saved with it on): a baseline, not a press.
        let mut t = Trigger::new();
        assert!(!t.rose(true));
        assert!(!t.rose(true));
        // Released and pressed again: one edge, held: no more.
        assert!(!t.rose(false));
        assert!(t.rose(true));
        assert!(!t.rose(true));
    }

    #[test]
    fn a_reset_takes_the_current_value_as_the_baseline() {
        let mut t = Trigger::new();
        assert!(!t.rose(false));
        assert!(t.rose(true));
        // The host restarts processing with the parameter still on: nothing starts.
        t.rearm(true);
        assert!(!t.rose(true));
        // Armed off: the next on is a press (e.g. automation at the first sample).
        t.rearm(false);
        assert!(t.rose(true));
        // A reset with it off, then on in the first block: a press as well.
        t.rearm(false);
        assert!(!t.rose(false));
        assert!(t.rose(true));
    }
}
