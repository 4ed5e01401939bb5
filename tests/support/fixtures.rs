//! Helpers shared by the engine's and the CLI's tests (each test file includes this with
//! `#[path = "../../tests/support/fixtures.rs"] mod common;` and uses what it needs).
#![allow(dead_code)]

use candle_core::{DType, Tensor};
use serde_json::Value;
use std::path::PathBuf;

/// The committed test fixtures (`tests/fixtures/` at the workspace root).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Largest absolute difference between two tensors of the same shape, compared in f32.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// One case's list of pitch classes from the chroma references (`tests/fixtures/chroma/refs.json`,
/// made by scripts/make_chroma_refs.py with transformers and librosa).
pub fn chroma_reference(name: &str, key: &str) -> Vec<u8> {
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("chroma").join("refs.json")).unwrap())
            .unwrap();
    let case = refs["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect()
}
