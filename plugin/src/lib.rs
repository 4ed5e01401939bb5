//! MelodyGen: text- and melody-conditioned music generation (Meta's MusicGen, run locally on
//! Candle) as a VST3/CLAP plugin.
//!
//! The model itself is the headless [`melodygen_engine`] crate; this crate is what runs inside
//! the host: the nice-plug shell (parameters, audio callback, editor), the per-instance
//! dispatcher, and the process-wide [`worker`] that owns the loaded models.

mod plugin;
pub mod worker;

/// Dragging clip files out of the editor (used by the editor and by the X11 drag tests).
pub use plugin::drag;
pub use plugin::params::MelodyGenParams;
pub use plugin::MelodyGen;

nice_plug::nice_export_clap!(MelodyGen);
nice_plug::nice_export_vst3!(MelodyGen);
