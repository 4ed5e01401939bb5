//! The model section of the window: which MusicGen model, whether it is on this computer (where,
//! how big), what it runs on, the weight format, and a Download button with progress and Cancel.
//! Plus [`status_chip`], the one-line summary for the top bar.
//!
//! GUI thread only, and never blocking: looking a model up touches the filesystem, so the editor
//! does not do it. It publishes the model text into `SharedState::disk` and shows the answer the
//! dispatcher found (`crate::dispatch::disk_status`), "checking…" until there is one. The download
//! itself runs on its own thread (`worker::download`); the panel reads its progress from atomics.

use melodygen_engine::checkpoint::download::{format_bytes, FILES_BY_HAND};
use melodygen_engine::checkpoint::looks_like_repo_id;
use crate::dispatch::disk_status::DiskStatus;
pub use crate::dispatch::disk_status::ModelStatus;
use crate::worker::download::{self, DownloadSnapshot, DownloadState, ModelDownload};
use melodygen_engine::record::{GenerationParams, Quant};
use std::path::Path;
use std::sync::Arc;

/// The panel's memory between frames: the download this window follows. (What the model's
/// status is lives in [`DiskStatus`], found by the dispatcher.)
#[derive(Default)]
pub struct ModelCheck {
    /// The download of the current model this window shows, and whether its end was handled.
    download: Option<Followed>,
}

struct Followed {
    download: Arc<ModelDownload>,
    /// Set once a finished download has made the model be looked up again.
    settled: bool,
}

impl ModelCheck {
    /// The status of `spec` as the dispatcher last found it (`None`: not checked yet), and asks
    /// for `spec` to be checked. Reads shared memory only: no filesystem access.
    pub fn status(&self, disk: &DiskStatus, spec: &str) -> Option<ModelStatus> {
        disk.want_model(spec);
        disk.model_status(spec)
    }

    /// The download of `spec` this window should show: the one it follows, or one another
    /// instance started. A finished download makes the model be looked up again, once.
    fn follow(&mut self, disk: &DiskStatus, spec: &str) -> Option<DownloadSnapshot> {
        let repo = spec.trim();
        if self.download.as_ref().is_some_and(|f| f.download.repo != repo) {
            self.download = None;
        }
        if self.download.is_none() && looks_like_repo_id(repo) {
            self.download = download::find(repo).map(|download| Followed {
                settled: download.state().is_finished(),
                download,
            });
        }
        let followed = self.download.as_mut()?;
        let snapshot = followed.download.snapshot();
        if snapshot.state.is_finished() && !followed.settled {
            followed.settled = true;
            disk.recheck_model();
        }
        Some(snapshot)
    }

    fn start_download(&mut self, spec: &str) {
        self.download = Some(Followed {
            download: download::start(spec.trim()),
            settled: false,
        });
    }

    fn cancel_download(&self) {
        if let Some(f) = &self.download {
            f.download.cancel();
        }
    }
}

/// Draws the model section, editing `params.model` and `params.quant` in place.
pub fn show(ui: &mut egui::Ui, params: &mut GenerationParams, check: &mut ModelCheck, disk: &DiskStatus) {
    ui.horizontal(|ui| {
        ui.label("Model");
        let field = ui.add(egui::TextEdit::singleline(&mut params.model).desired_width(f32::INFINITY));
        crate::editor::ui_rects::record(ui.ctx(), "model_field", field.rect);
        field.on_hover_text(
                "Which MusicGen model makes the music. A melody model (facebook/musicgen-melody, \
                 the default) follows the melody of your track; the others only follow the text. \
                 Type a Hugging Face name, or the folder of a model on your disk.",
            );
    });
    let spec = params.model.clone();
    let download = check.follow(disk, &spec);
    let status = check.status(disk, &spec);
    let downloading = download.as_ref().is_some_and(|d| !d.state.is_finished());

    ui.horizontal_wrapped(|ui| match &status {
        None => {
            ui.weak("Checking…").on_hover_text("Looking for the model on this computer.");
        }
        Some(ModelStatus::Ready { weights_bytes, .. }) => {
            ui.colored_label(ready_color(ui), "Ready");
            ui.label(format!("{} on disk", format_bytes(*weights_bytes)))
                .on_hover_text("The size of the model's weight files.");
        }
        Some(ModelStatus::Missing { .. }) if downloading => {
            ui.colored_label(ui.visuals().warn_fg_color, "Downloading…");
        }
        Some(ModelStatus::Missing { downloadable, .. }) => {
            ui.colored_label(ui.visuals().warn_fg_color, "Not on this computer");
            if *downloadable && !downloading {
                let button = ui.button("Download").on_hover_text(
                    "Fetch this model from Hugging Face into its usual folder on this computer \
                     (once; several GB for the larger models). You can keep working meanwhile.",
                );
                crate::editor::ui_rects::record(ui.ctx(), "model_download", button.rect);
                if button.clicked() {
                    check.start_download(&spec);
                }
            }
        }
        Some(ModelStatus::Broken { .. }) => {
            ui.colored_label(ui.visuals().error_fg_color, "Incomplete");
        }
    });

    ui.horizontal(|ui| {
        ui.label("Runs on");
        ui.label(crate::worker::device::name()).on_hover_text(
            "Where the music is computed. The CPU works everywhere; a graphics card (CUDA or \
             Metal, in a GPU build of the plugin) is many times faster.",
        );
        ui.add_space(12.0);
        ui.label("Weights");
        quant_combo(ui, &mut params.quant);
    });

    match &status {
        None => {}
        Some(ModelStatus::Ready { dir, .. }) => {
            ui.add(egui::Label::new(egui::RichText::new(dir.display().to_string()).weak()).wrap())
                .on_hover_text("Where the model's files are.");
        }
        Some(ModelStatus::Missing { downloadable: true, .. }) if download.is_none() => {
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!(
                        "Press Download to fetch it from Hugging Face into {}.",
                        melodygen_engine::checkpoint::hf_cache_root().display()
                    ))
                    .weak(),
                )
                .wrap(),
            );
        }
        Some(ModelStatus::Missing { message, .. }) if download.is_none() => {
            ui.add(egui::Label::new(egui::RichText::new(message).weak()).wrap());
        }
        Some(ModelStatus::Broken { message, .. }) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
        }
        Some(ModelStatus::Missing { .. }) => {}
    }

    if let Some(d) = &download {
        let ready = matches!(status, Some(ModelStatus::Ready { .. }));
        show_download(ui, spec.trim(), d, ready, check);
    }
}

/// The progress bar and Cancel while a download runs; how it ended once it has.
/// `ready`: the model is found (a finished download needs no words then).
fn show_download(ui: &mut egui::Ui, repo: &str, d: &DownloadSnapshot, ready: bool, check: &ModelCheck) {
    match d.state {
        DownloadState::Listing | DownloadState::Downloading | DownloadState::Cancelling => {
            ui.horizontal(|ui| {
                let fraction = if d.total > 0 { d.done as f32 / d.total as f32 } else { 0.0 };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .text(progress_text(d))
                        .desired_width((ui.available_width() - 80.0).max(120.0)),
                );
                let cancel = ui.add_enabled(d.state != DownloadState::Cancelling, egui::Button::new("Cancel"));
                crate::editor::ui_rects::record(ui.ctx(), "model_cancel", cancel.rect);
                if cancel.on_hover_text("Stop the download. What is fully downloaded is kept for next time.").clicked() {
                    check.cancel_download();
                }
            });
            if d.state == DownloadState::Downloading {
                ui.label(egui::RichText::new(file_line(d)).weak());
            }
        }
        DownloadState::Done => {
            if !ready {
                if let Some(Ok(dir)) = &d.outcome {
                    ui.label(format!("Downloaded to {}", dir.display()));
                }
            }
        }
        DownloadState::Cancelled => {
            if !ready {
                ui.label("Download cancelled. Files already complete are kept; Download fetches the rest.");
            }
        }
        DownloadState::Failed => {
            if let Some(Err(failure)) = &d.outcome {
                match &failure.by_hand {
                    Some((folder, why)) => show_offline_help(ui, repo, folder, why),
                    None => {
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new(&failure.message).color(ui.visuals().warn_fg_color),
                            )
                            .wrap(),
                        );
                    }
                }
            }
        }
    }
}

/// No connection: what to do instead, in steps, with the folder on a line of its own so it can be
/// selected and copied.
fn show_offline_help(ui: &mut egui::Ui, repo: &str, folder: &Path, why: &str) {
    let warn = ui.visuals().warn_fg_color;
    ui.colored_label(warn, format!("No connection to Hugging Face ({why})."));
    ui.add(
        egui::Label::new(format!(
            "Check the internet connection and press Download again. Or, on a computer that is \
             online, run `huggingface-cli download {repo}` (or `melodygen download {repo}`) and \
             copy its Hugging Face cache folder over. Or put the model's files ({FILES_BY_HAND}) \
             into this folder:"
        ))
        .wrap(),
    );
    ui.add(egui::Label::new(egui::RichText::new(folder.display().to_string()).monospace()).wrap())
        .on_hover_text("Select the text to copy it.");
}

fn quant_combo(ui: &mut egui::Ui, quant: &mut Quant) {
    egui::ComboBox::from_id_salt("model_quant")
        .selected_text(quant.label())
        .show_ui(ui, |ui| {
            for q in Quant::ALL {
                ui.selectable_value(quant, q, q.label()).on_hover_text(quant_help(q));
            }
        })
        .response
        .on_hover_text(
            "How precisely the model's weights are stored while it plays. Smaller formats are \
             faster and use less memory; the same seed can sound a little different.",
        );
}

/// What each weight format means for the music.
fn quant_help(q: Quant) -> &'static str {
    match q {
        Quant::F32 => "Exactly the model as trained. Slowest; a seed always gives the same result.",
        Quant::Q8_0 => "About twice as fast on a CPU, with hardly any audible difference.",
        Quant::Q4K => {
            "Fastest and smallest; results differ audibly from full precision for the same seed."
        }
    }
}

/// One line for the top bar: model · device · weight format · state, coloured by state, with the
/// details on hover. Reads the dispatcher's last lookup (no filesystem access).
pub fn status_chip(
    ui: &mut egui::Ui,
    params: &GenerationParams,
    check: &mut ModelCheck,
    disk: &DiskStatus,
) -> egui::Response {
    let download = check.follow(disk, &params.model);
    let status = check.status(disk, &params.model);
    let (state, color) = match (&status, &download) {
        (Some(ModelStatus::Ready { .. }), _) => ("ready".to_string(), ready_color(ui)),
        (_, Some(d)) if !d.state.is_finished() => (
            match d.state {
                DownloadState::Listing => "downloading…".to_string(),
                _ if d.total > 0 => format!("downloading {:.0}%", 100.0 * d.done as f64 / d.total as f64),
                _ => "downloading…".to_string(),
            },
            ui.visuals().warn_fg_color,
        ),
        (None, _) => ("checking…".to_string(), ui.visuals().weak_text_color()),
        (Some(ModelStatus::Missing { .. }), _) => ("missing".to_string(), ui.visuals().warn_fg_color),
        (Some(ModelStatus::Broken { .. }), _) => ("incomplete".to_string(), ui.visuals().error_fg_color),
    };
    let text = chip_text(&params.model, crate::worker::device::name(), params.quant, &state);
    let hover = match &status {
        None => "Looking for the model on this computer.".to_string(),
        Some(ModelStatus::Ready { dir, weights_bytes }) => {
            format!("{} ({} on disk)", dir.display(), format_bytes(*weights_bytes))
        }
        Some(ModelStatus::Missing { message, .. } | ModelStatus::Broken { message, .. }) => {
            format!("{message}\nOpen Advanced to download or choose the model.")
        }
    };
    ui.add(egui::Label::new(egui::RichText::new(text).color(color)).truncate())
        .on_hover_text(hover)
}

fn ready_color(ui: &egui::Ui) -> egui::Color32 {
    if ui.visuals().dark_mode {
        egui::Color32::from_rgb(110, 200, 120)
    } else {
        egui::Color32::from_rgb(30, 130, 50)
    }
}

/// "musicgen-melody · CPU · f32 · ready": the model's short name (the last part of a hub name
/// or folder), device, weight format and state.
pub fn chip_text(model: &str, device: &str, quant: Quant, state: &str) -> String {
    let model = model.trim().trim_end_matches(['/', '\\']);
    let short = model.rsplit(['/', '\\']).next().filter(|s| !s.is_empty()).unwrap_or(model);
    format!("{short} · {device} · {} · {state}", quant.name())
}

/// The text on the download bar (the whole model): "1.20 GB of 3.41 GB · 12.3 MB/s · 3 min left".
pub fn progress_text(d: &DownloadSnapshot) -> String {
    match d.state {
        DownloadState::Listing => return "Asking Hugging Face for the model's files…".into(),
        DownloadState::Cancelling => return "Cancelling…".into(),
        _ => {}
    }
    let mut text = format!("{} of {}", format_bytes(d.done), format_bytes(d.total));
    if d.bytes_per_sec > 0 {
        text += &format!(" · {}/s", format_bytes(d.bytes_per_sec));
    }
    if let Some(eta) = d.eta_s {
        text += &format!(" · {} left", format_eta(eta));
    }
    text
}

/// The line under the bar: "File 5 of 7: model.safetensors (1.00 GB of 3.00 GB)".
pub fn file_line(d: &DownloadSnapshot) -> String {
    format!(
        "File {} of {}: {} ({} of {})",
        d.file_index + 1,
        d.file_count,
        d.file,
        format_bytes(d.file_done),
        format_bytes(d.file_size)
    )
}

/// Time left, as precise as is useful: "8 s", "3 min", "1 h 05 min".
pub fn format_eta(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", (s + 30) / 60)
    } else {
        let m = (s + 30) / 60;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::disk_status::{DiskChecker, DiskRefresh};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the dispatcher's model look-ups; every model is ready.
    struct Counting(Arc<AtomicUsize>);
    impl DiskChecker for Counting {
        fn model(&mut self, _spec: &str) -> ModelStatus {
            self.0.fetch_add(1, Ordering::Relaxed);
            ModelStatus::Ready { dir: "/models/m".into(), weights_bytes: 7 }
        }
        fn exists(&mut self, _path: &Path) -> bool {
            true
        }
    }

    /// Draws the chip and the panel for one frame, as the editor does; returns the state word
    /// the chip shows.
    fn frame(ctx: &egui::Context, params: &mut GenerationParams, check: &mut ModelCheck, disk: &DiskStatus) -> String {
        let output = ctx.run_ui(egui::RawInput::default(), |ui| {
            status_chip(ui, params, check, disk);
            show(ui, params, check, disk);
        });
        output.drop_without_applying_deltas();
        let state = match check.status(disk, &params.model) {
            None => "checking…",
            Some(ModelStatus::Ready { .. }) => "ready",
            Some(_) => "other",
        };
        state.to_string()
    }

    #[test]
    fn editor_frames_and_keystrokes_make_no_look_ups_the_dispatcher_answers() {
        let looks = Arc::new(AtomicUsize::new(0));
        let mut refresh = DiskRefresh::new(Box::new(Counting(looks.clone())));
        let (disk, clips) = (DiskStatus::default(), crate::state::ClipList::default());
        let ctx = egui::Context::default();
        let mut check = ModelCheck::default();
        let mut params = GenerationParams { model: "owner-x/model".into(), ..Default::default() };
        // Thirty frames and ten keystrokes: the editor looks nothing up and says so.
        for i in 0..30 {
            if i % 3 == 0 {
                params.model.push('y');
            }
            assert!(frame(&ctx, &mut params, &mut check, &disk).ends_with("checking…"));
        }
        assert_eq!(looks.load(Ordering::Relaxed), 0, "an editor frame looked a model up");
        // The dispatcher's refresh looks once and the next frame shows its answer.
        refresh.refresh_at(&disk, &clips, true, std::time::Instant::now());
        assert_eq!(looks.load(Ordering::Relaxed), 1);
        assert!(frame(&ctx, &mut params, &mut check, &disk).ends_with("ready"));
    }

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(format_eta(0.2), "0 s");
        assert_eq!(format_eta(59.4), "59 s");
        assert_eq!(format_eta(61.0), "1 min");
        assert_eq!(format_eta(15.0 * 60.0 + 40.0), "16 min");
        assert_eq!(format_eta(3600.0 + 5.0 * 60.0), "1 h 05 min");
        assert_eq!(format_eta(-3.0), "0 s");
    }

    #[test]
    fn the_chip_names_model_device_format_and_state() {
        assert_eq!(
            chip_text("facebook/musicgen-melody", "CPU", Quant::Q8_0, "ready"),
            "musicgen-melody · CPU · q8_0 · ready"
        );
        assert_eq!(
            chip_text("/models/my-melody/", "CUDA", Quant::F32, "missing"),
            "my-melody · CUDA · f32 · missing"
        );
    }

    #[test]
    fn the_progress_line_has_file_amounts_speed_and_time_left() {
        let d = DownloadSnapshot {
            state: DownloadState::Downloading,
            file: "model.safetensors".into(),
            file_index: 4,
            file_count: 7,
            file_done: 1_000_000_000,
            file_size: 3_000_000_000,
            done: 1_200_000_000,
            total: 3_410_000_000,
            bytes_per_sec: 12_300_000,
            eta_s: Some(180.0),
            outcome: None,
        };
        assert_eq!(progress_text(&d), "1.20 GB of 3.41 GB · 12.3 MB/s · 3 min left");
        assert_eq!(file_line(&d), "File 5 of 7: model.safetensors (1.00 GB of 3.00 GB)");
        let listing = DownloadSnapshot { state: DownloadState::Listing, ..d };
        assert!(progress_text(&listing).contains("Asking Hugging Face"));
    }
}
