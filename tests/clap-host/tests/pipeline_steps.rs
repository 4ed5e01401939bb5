//! The generation pipeline in the CLAP test host, each step in its own process (see
//! `src/bin/clap-pipeline-host/`), against the allocation-checking bundle from
//! `MELODYGEN_CLAP_BUNDLE` with the tiny melody checkpoint (`tests/fixtures/tiny-musicgen-melody`).
//!
//! Every step gets its own clip folder, so the clips and sidecars it checks are its own.

use clap_test_host::signal;
use std::path::PathBuf;
use std::process::Command;

fn bundle() -> PathBuf {
    let path = std::env::var_os("MELODYGEN_CLAP_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
            "MELODYGEN_CLAP_BUNDLE is not set. The pipeline tests need the allocation-checking \
             bundle: run them through `cargo xtask test`, which builds it and sets the variable."
        )
        });
    assert!(
        path.exists(),
        "MELODYGEN_CLAP_BUNDLE points at '{}', which does not exist",
        path.display()
    );
    path
}

fn tiny_model() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tiny-musicgen-melody");
    assert!(
        dir.join("config.json").exists(),
        "tiny checkpoint missing at {}",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

fn run_step(step: &str) {
    let bundle = bundle();
    let clips =
        std::env::temp_dir().join(format!("melodygen-pipeline-{step}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&clips);
    let output = Command::new(env!("CARGO_BIN_EXE_clap-pipeline-host"))
        .arg(step)
        .arg(&bundle)
        .env("MELODYGEN_MODEL", tiny_model())
        .env("MELODYGEN_CLIP_DIR", &clips)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not start the CLAP pipeline host for step '{step}': {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    if output.status.success() {
        let _ = std::fs::remove_dir_all(&clips);
        return;
    }
    let how = signal::describe(&output.status);
    if signal::crashed(&output.status) {
        panic!(
            "CLAP host (clack-host) CRASHED with {how} during pipeline step '{step}'. An abort with \
             \"memory allocation of N bytes failed\" is an allocation on the audio thread caught by \
             assert_process_allocs.\n--- host stderr ---\n{stderr}"
        );
    }
    panic!("CLAP host (clack-host) pipeline step '{step}' failed ({how}):\n{stderr}");
}

#[test]
fn pipeline_generate_at_44100() {
    run_step("generate-44100");
}

#[test]
fn pipeline_generate_at_48000() {
    run_step("generate-48000");
}

#[test]
fn pipeline_four_instances_share_one_model() {
    run_step("four-instances");
}

#[test]
fn pipeline_cancel_mid_job() {
    run_step("cancel");
}

#[test]
fn pipeline_remove_instance_mid_job() {
    run_step("remove");
}

#[test]
fn pipeline_sample_rate_change_mid_job() {
    run_step("rate-change");
}

#[test]
fn pipeline_corrupt_model_is_a_message() {
    run_step("corrupt-model");
}

#[test]
fn pipeline_reopened_session_plays_its_clip() {
    run_step("reopen");
}

#[test]
fn pipeline_follow_transport_aligns_the_clip() {
    run_step("follow-transport");
}

#[test]
fn pipeline_preview_while_generating_is_heard_before_the_job_ends() {
    run_step("preview-while-generating");
}

#[test]
fn pipeline_triggers_start_nothing_on_load_restart_or_reset() {
    run_step("triggers");
}
