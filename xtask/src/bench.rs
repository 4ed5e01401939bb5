//! `cargo xtask bench [ARGS]`: our engine against transformers on this machine.
//!
//! Builds the release CLI, then hands over to `scripts/bench.py` (the benchmark itself lives in
//! Python because one side of the comparison *is* Python: transformers' `generate`). Every
//! argument is passed through (`--max-new-tokens N`, `--melody`, `--skip-transformers`, ...).
//!
//! The Python must have torch and transformers 5.23 (see the top of `scripts/bench.py`); it is
//! `$MELODYGEN_BENCH_PYTHON`, else `/tmp/refvenv/bin/python` when present, else `python3`.
//! Not part of CI: it takes minutes and builds multi-GB checkpoints in `target/bench-models/`.

use crate::{bundles, cmd};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::Command;

pub fn run(args: Vec<String>) -> Result<()> {
    let root = cmd::workspace_root()?;
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import torch, transformers"])
        .output();
    if !matches!(probe, Ok(ref o) if o.status.success()) {
        bail!(
            "`{}` cannot import torch and transformers; create a venv as the top of scripts/bench.py \
             says and point MELODYGEN_BENCH_PYTHON at its python",
            python.display()
        );
    }
    cmd::step("build the release CLI", bundles::build_release_cli)?;

    cmd::step("benchmark", || {
        cmd::run(
            Command::new(&python)
                .arg(root.join("scripts").join("bench.py"))
                .args(&args),
        )
    })?;
    Ok(())
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MELODYGEN_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let refvenv = PathBuf::from("/tmp/refvenv/bin/python");
    if refvenv.exists() {
        refvenv
    } else {
        PathBuf::from("python3")
    }
}
