//! `melodygen download <name> [--revision R]`: fetches a MusicGen model from the Hugging Face
//! hub into the local Hugging Face cache, where the plugin and `melodygen generate --model
//! <name>` find it. The same code as the window's Download button, with a text progress line.

use std::sync::atomic::AtomicBool;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use melodygen_engine::checkpoint::download::{self, format_bytes, DownloadProgress, Hub};

#[derive(clap::Args)]
pub struct Args {
    /// The model: a Hugging Face name such as facebook/musicgen-melody, or a short name such as
    /// musicgen-small (meaning facebook/musicgen-small).
    pub name: String,
    /// Branch, tag or commit to fetch.
    #[arg(long, default_value = "main")]
    pub revision: String,
}

/// `musicgen-small` → `facebook/musicgen-small`; full names are kept.
pub fn repo_name(name: &str) -> String {
    let name = name.trim();
    if name.contains('/') {
        name.to_string()
    } else {
        format!("facebook/{name}")
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = repo_name(&args.name);
    let hub = Hub::from_env();
    // The CLI stops with Ctrl-C; nothing sets this.
    let cancel = AtomicBool::new(false);
    eprintln!("Asking {} for {repo} ({})…", hub.host(), args.revision);
    let plan = download::plan(&hub, &repo, &args.revision, &cancel)?;
    eprintln!(
        "{repo} at {}: {} files, {} → {}",
        &plan.commit[..plan.commit.len().min(12)],
        plan.files.len(),
        format_bytes(plan.total_bytes()),
        hub.repo_dir(&repo).display()
    );
    let bar = ProgressBar::with_draw_target(Some(plan.total_bytes()), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:24!} {bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}",
        )
        .context("progress template")?,
    );
    let mut last_file = usize::MAX;
    let dir = download::fetch(&hub, &plan, &cancel, &mut |p: &DownloadProgress| {
        if p.file_index != last_file {
            last_file = p.file_index;
            bar.set_message(p.file.clone());
            // Without a terminal the bar is hidden: say which file is coming, one line each.
            if bar.is_hidden() {
                eprintln!(
                    "[{}/{}] {} ({})",
                    p.file_index + 1,
                    p.file_count,
                    p.file,
                    format_bytes(p.file_size)
                );
            }
        }
        bar.set_length(p.total.max(p.done));
        bar.set_position(p.done);
    })?;
    bar.finish_and_clear();
    eprintln!("{repo} is ready in {}", dir.display());
    println!("{}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_names_mean_meta_s_models() {
        assert_eq!(super::repo_name("musicgen-small"), "facebook/musicgen-small");
        assert_eq!(super::repo_name("me/my-model"), "me/my-model");
    }
}
