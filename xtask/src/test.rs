//! `cargo xtask test`: every test, real hosts included, on the allocation-checking build.
//!
//! 1. system packages (apt) and the Python virtualenv (`deps`);
//! 2. ONE build: `cargo build` of the workspace with debug assertions and
//!    `assert_process_allocs` in `target/alloc-check`, which produces the plugin's cdylib;
//! 3. bundling that cdylib (no compile);
//! 4. `cargo test` with exactly the same env/profile/features/target dir, so it reuses every
//!    dependency and the plugin library built in step 2 and only compiles the test harnesses;
//!    this includes the CLAP host tests, which get the `.clap` bundle through
//!    `MELODYGEN_CLAP_BUNDLE`;
//! 5. pytest on `tests/hosts/` (pedalboard VST3, several instances, editor under Xvfb, Ardour).
//!
//! A failing step does not stop the later test steps, so one run reports everything; the
//! command fails if anything failed.

use crate::bundles::{self, Bundles};
use crate::{cmd, deps};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// `cargo xtask hosts [PYTEST ARGS]`: steps 2, 3 and 5 only, for working on one host test
/// (`cargo xtask hosts tests/hosts/test_editor.py -k library`). Without arguments pytest runs
/// all of `tests/hosts/`. Assumes the system packages and `.venv` are there (run `cargo xtask
/// test` once).
pub fn run_hosts(args: Vec<String>) -> Result<()> {
    let root = cmd::workspace_root()?;
    let python = deps::ensure_venv(&root)?;
    cmd::run(&mut alloc_check_cargo(&root, "build"))?;
    let bundles = bundles::bundle_alloc_check(&root)?;
    let selection = if args.is_empty() { vec!["tests/hosts".to_string()] } else { args };
    run_pytest_on(&root, &python, &bundles, &selection)
}

pub fn run(args: Vec<String>) -> Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask test` takes no arguments (got {args:?}); it always runs every test");
    }
    let root = cmd::workspace_root()?;
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();

    let ((), t) = cmd::step("system packages", deps::ensure_system_packages)?;
    timings.push(("system packages", t));
    let (python, t) = cmd::step("python virtualenv", || deps::ensure_venv(&root))?;
    timings.push(("python virtualenv", t));
    let ((), t) = cmd::step("build (allocation-checking, target/alloc-check)", || {
        cmd::run(&mut alloc_check_cargo(&root, "build"))
    })?;
    timings.push(("build", t));
    let (bundles, t) = cmd::step("bundle the allocation-checking build", || {
        bundles::bundle_alloc_check(&root)
    })?;
    timings.push(("bundle", t));

    let (cargo_results, t) = cmd::step("cargo tests (workspace, incl. CLAP host)", || {
        run_cargo_tests(&root, &bundles)
    })?;
    timings.push(("cargo tests", t));
    if let Err(e) = &cargo_results.outcome {
        failures.push(format!("cargo tests: {e:#}"));
    }

    let (pytest_outcome, t) = cmd::step("host tests (pytest tests/hosts)", || {
        Ok(run_pytest(&root, &python, &bundles))
    })?;
    timings.push(("host tests (pytest)", t));
    if let Err(e) = &pytest_outcome {
        failures.push(format!("host tests: {e:#}"));
    }

    println!("\n=== summary ===");
    for (name, secs) in &timings {
        println!("{name:<22} {secs:>7.1} s");
    }
    println!("\ncargo test results:");
    for line in &cargo_results.result_lines {
        println!("  {line}");
    }
    let totals = cargo_results.totals();
    println!(
        "  total: {} suites, {} passed, {} failed, {} ignored",
        cargo_results.result_lines.len(),
        totals[0],
        totals[1],
        totals[2]
    );
    println!(
        "host tests (pytest): {} (JUnit report: target/test-artifacts/pytest-junit.xml)",
        if pytest_outcome.is_ok() { "passed" } else { "FAILED" }
    );
    if failures.is_empty() {
        println!("\nall tests passed");
        Ok(())
    } else {
        bail!("{} test step(s) failed:\n  {}", failures.len(), failures.join("\n  "))
    }
}

/// `cargo <subcommand>` (build or test) of the whole workspace on the allocation-checking
/// build. `build` and `test` must get identical packages, features, profile, env and target
/// dir, or cargo would compile the dependencies (Candle, egui, ...) a second time. (`cargo test
/// --no-run` alone would not do: it leaves the cdylib in `deps/`, where the bundler does not
/// look.)
fn alloc_check_cargo(root: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args([
        subcommand,
        "--workspace",
        "--release",
        "--features",
        bundles::ALLOC_CHECK_FEATURES,
    ]);
    bundles::alloc_check_env(&mut cmd, root);
    cmd
}

struct CargoResults {
    result_lines: Vec<String>,
    outcome: Result<()>,
}

impl CargoResults {
    /// passed, failed, ignored over all suites.
    fn totals(&self) -> [u64; 3] {
        let mut totals = [0u64; 3];
        for line in &self.result_lines {
            for (i, word) in ["passed", "failed", "ignored"].iter().enumerate() {
                totals[i] += count_before(line, word);
            }
        }
        totals
    }
}

/// The number in front of `word` in "test result: ok. 3 passed; 0 failed; ...".
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split(|c: char| c == ' ' || c == ';').filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .find(|w| w[1] == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

/// Runs the workspace tests, echoing their output and keeping the "test result" lines.
fn run_cargo_tests(root: &Path, bundles: &Bundles) -> Result<CargoResults> {
    let mut cmd = alloc_check_cargo(root, "test");
    // Without it cargo stops at the first failing test binary and the rest never run.
    cmd.arg("--no-fail-fast");
    cmd.env("MELODYGEN_CLAP_BUNDLE", &bundles.clap).stdout(Stdio::piped());
    println!("$ {}", cmd::show(&cmd));
    let mut child = cmd.spawn().context("could not start cargo test")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut result_lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if line.starts_with("test result:") {
            result_lines.push(line);
        }
    }
    let status = child.wait()?;
    let outcome = if status.success() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("`cargo test` failed with {status}"))
    };
    Ok(CargoResults { result_lines, outcome })
}

/// pytest on the real-host tests, pointed at the allocation-checking bundles.
fn run_pytest(root: &Path, python: &Path, bundles: &Bundles) -> Result<()> {
    run_pytest_on(root, python, bundles, &["tests/hosts".to_string()])
}

/// pytest with `args` (paths, `-k` filters, ...) instead of the whole of `tests/hosts`.
fn run_pytest_on(root: &Path, python: &Path, bundles: &Bundles, args: &[String]) -> Result<()> {
    let artifacts = root.join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    cmd::run(
        Command::new(python)
            .current_dir(root)
            .args(["-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider"])
            .args(args)
            .arg(format!("--junitxml={}", artifacts.join("pytest-junit.xml").display()))
            .env("MELODYGEN_VST3", &bundles.vst3)
            .env("MELODYGEN_CLAP", &bundles.clap)
            .env("MELODYGEN_ARTIFACTS", &artifacts),
    )
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn reads_counts_from_a_cargo_result_line() {
        let line = "test result: ok. 12 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.20s";
        assert_eq!(count_before(line, "passed"), 12);
        assert_eq!(count_before(line, "failed"), 1);
        assert_eq!(count_before(line, "ignored"), 3);
    }
}
