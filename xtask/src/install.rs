//! `cargo xtask install`: release bundles into the user's plugin folders, then a first generation.

use crate::bundles;
use crate::cmd;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the plugin's model weights come from; printed after installing because the bundles
/// do not contain them.
const WEIGHTS_NOTE: &str = "\
Model weights are not part of the bundles. MelodyGen runs Meta's MusicGen locally and by default
loads facebook/musicgen-melody from the Hugging Face cache (~/.cache/huggingface/hub, or $HF_HUB_CACHE
/ $HF_HOME/hub) when you first press Generate. Download it once: with the Download button in the
plugin window (Advanced > Model), or from a terminal with

    target/release/melodygen download facebook/musicgen-melody
    (or: pip install -U huggingface_hub && huggingface-cli download facebook/musicgen-melody)

or set MELODYGEN_MODEL to a Hugging Face repo id or to a folder holding config.json,
model.safetensors and tokenizer.json. See README.md, section \"Model weights\".";

pub fn run(args: Vec<String>) -> Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask install` takes no arguments (got {args:?})");
    }
    let root = cmd::workspace_root()?;
    let (built, _) = cmd::step("build release bundles", || bundles::build_release(&root))?;
    let (vst3_dir, clap_dir) = plugin_folders()?;
    let mut placed = Vec::new();
    for (src, dir) in [(&built.vst3, &vst3_dir), (&built.clap, &clap_dir)] {
        std::fs::create_dir_all(dir).with_context(|| format!("could not create '{}'", dir.display()))?;
        let dst = dir.join(src.file_name().expect("bundle paths end in a file name"));
        cmd::copy_replacing(src, &dst)?;
        placed.push(dst);
    }
    println!("\nInstalled MelodyGen:");
    for path in &placed {
        println!("  {}", path.display());
    }
    println!("Rescan plugins in your DAW to pick it up.\n\n{WEIGHTS_NOTE}");
    cmd::step("build the release CLI", bundles::build_release_cli)?;
    run_first_generation(&root)
}

/// The prompt of the first generation `install` runs, so a user hears the engine at once.
const DEMO_PROMPT: &str = "warm lo-fi piano with vinyl crackle, 80 bpm";

/// Runs the main job once with the freshly built CLI: a 5 s generation with the model the plugin
/// would use. Without weights on this machine it says so and instead runs the engine on the
/// tiny random test checkpoint, which proves the build works end to end (its audio is noise).
fn run_first_generation(root: &Path) -> Result<()> {
    let cli = root.join("target").join("release").join(if cfg!(windows) { "melodygen.exe" } else { "melodygen" });
    let model = std::env::var("MELODYGEN_MODEL").unwrap_or_else(|_| "facebook/musicgen-melody".into());
    let out = root.join("target").join("first-generation.wav");
    println!("\nFirst generation with {model} (5 s, seed 1) -> {}", out.display());
    let real = Command::new(&cli)
        .args(["generate", "--model", &model, "--prompt", DEMO_PROMPT, "--duration", "5", "--seed", "1", "--out"])
        .arg(&out)
        .status()
        .with_context(|| format!("could not run {}", cli.display()))?;
    if real.success() {
        println!("Done: listen to {}", out.display());
        return Ok(());
    }
    let tiny = root.join("tests").join("fixtures").join("tiny-musicgen-melody");
    let check = root.join("target").join("engine-check.wav");
    println!(
        "\nThe model is not on this machine yet (see above). Checking the engine instead on the tiny \
         random test checkpoint (its output is noise) -> {}",
        check.display()
    );
    cmd::run(
        Command::new(&cli)
            .args(["generate", "--model"])
            .arg(&tiny)
            .args(["--prompt", DEMO_PROMPT, "--duration", "1", "--seed", "1", "--out"])
            .arg(&check),
    )?;
    println!("Engine check passed. Download the weights (above) to generate real music.");
    Ok(())
}

/// The per-user VST3 and CLAP folders of this OS (the locations the VST3 and CLAP specs name).
fn plugin_folders() -> Result<(PathBuf, PathBuf)> {
    if cfg!(target_os = "windows") {
        let local = std::env::var_os("LOCALAPPDATA").context("LOCALAPPDATA is not set")?;
        let common = PathBuf::from(local).join("Programs").join("Common");
        Ok((common.join("VST3"), common.join("CLAP")))
    } else {
        let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
        if cfg!(target_os = "macos") {
            let plugins = home.join("Library").join("Audio").join("Plug-Ins");
            Ok((plugins.join("VST3"), plugins.join("CLAP")))
        } else {
            Ok((home.join(".vst3"), home.join(".clap")))
        }
    }
}
