//! Building plugin bundles with nice-plug-xtask's bundler, and where they end up.

use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugin's cargo package.
pub const PACKAGE: &str = "melodygen";
/// The CLI's cargo package (binary `melodygen`); it links the engine only.
pub const CLI_PACKAGE: &str = "melodygen-cli";
/// The bundle name; must match `bundler.toml` (`[melodygen] name = ...`).
pub const BUNDLE_NAME: &str = "MelodyGen";

/// The allocation-checking build's own target dir (relative to the workspace root).
pub const ALLOC_CHECK_TARGET_DIR: &str = "target/alloc-check";
/// Features of the allocation-checking build, in the form `cargo ... --workspace` accepts.
pub const ALLOC_CHECK_FEATURES: &str = "melodygen/assert_process_allocs";

/// The two bundles of one build.
#[derive(Debug, Clone)]
pub struct Bundles {
    /// `<name>.vst3` (a directory on every OS).
    pub vst3: PathBuf,
    /// `<name>.clap` (a file on Linux and Windows, a directory on macOS).
    pub clap: PathBuf,
}

impl Bundles {
    /// Where nice-plug-xtask puts the bundles of a build in `target_dir`.
    pub fn in_target_dir(target_dir: &Path) -> Self {
        let bundled = target_dir.join("bundled");
        Self {
            vst3: bundled.join(format!("{BUNDLE_NAME}.vst3")),
            clap: bundled.join(format!("{BUNDLE_NAME}.clap")),
        }
    }

    fn check_exist(&self) -> Result<()> {
        for path in [&self.vst3, &self.clap] {
            ensure!(path.exists(), "the bundler did not produce '{}'", path.display());
        }
        Ok(())
    }
}

/// The environment of the allocation-checking build: nice-plug only checks allocations with
/// debug assertions on, and the optimised profile keeps Candle fast enough for the tests.
/// Every cargo command of `cargo xtask test` uses exactly this env so they share one build.
pub fn alloc_check_env(cmd: &mut Command, root: &Path) {
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true")
        .env("CARGO_TARGET_DIR", root.join(ALLOC_CHECK_TARGET_DIR));
}

/// Builds the release bundles (default features) into the normal target dir.
pub fn build_release(root: &Path) -> Result<Bundles> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_absolute() { dir } else { root.join(dir) })
        .unwrap_or_else(|| root.join("target"));
    let args = vec!["--release".to_string()];
    println!("$ cargo build -p {PACKAGE} --release");
    nice_plug_xtask::build(&[PACKAGE.to_string()], &args)?;
    nice_plug_xtask::bundle(&target_dir, PACKAGE, &args, false)?;
    let bundles = Bundles::in_target_dir(&target_dir);
    bundles.check_exist()?;
    Ok(bundles)
}

/// Builds the release CLI (`target/release/melodygen`): its own package, so this compiles the
/// engine and the CLI only, not the plugin framework or the GUI.
pub fn build_release_cli() -> Result<()> {
    crate::cmd::run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
        "build",
        "--release",
        "-p",
        CLI_PACKAGE,
        "--bin",
        "melodygen",
    ]))
}

/// Bundles the allocation-checking build, which `cargo build` (see `test.rs`) has already
/// compiled into [`ALLOC_CHECK_TARGET_DIR`]; no second compile happens here.
pub fn bundle_alloc_check(root: &Path) -> Result<Bundles> {
    let target_dir = root.join(ALLOC_CHECK_TARGET_DIR);
    nice_plug_xtask::bundle(&target_dir, PACKAGE, &["--release".to_string()], false)?;
    let bundles = Bundles::in_target_dir(&target_dir);
    bundles.check_exist()?;
    Ok(bundles)
}
