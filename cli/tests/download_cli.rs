//! `melodygen download` against a fake Hugging Face hub on 127.0.0.1
//! (`tests/support/fake_hub.rs`), through HF_ENDPOINT/HF_HUB_CACHE.

#[path = "../../tests/support/fake_hub.rs"]
mod fake_hub;

use std::path::PathBuf;

use fake_hub::*;
use melodygen_engine::checkpoint::resolve_in_cache;

#[test]
fn the_cli_downloads_into_the_cache_the_environment_names() {
    let fake = stereo_hub();
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("hub-cache");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_melodygen"))
        .args(["download", "test-org/tiny-stereo"])
        .env("HF_ENDPOINT", &fake.endpoint)
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(printed, resolve_in_cache(&cache, "test-org/tiny-stereo").unwrap());
    assert!(stderr.contains("[1/8] config.json") && stderr.contains("is ready in"), "{stderr}");

    // Offline, the CLI says what to do and fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_melodygen"))
        .args(["download", "musicgen-small"])
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("HF_HUB_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no connection") && stderr.contains("huggingface-cli download facebook/musicgen-small"), "{stderr}");
}
