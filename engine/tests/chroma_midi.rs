//! MIDI chroma against the audio reference of the same melody, and the single file entry point
//! (the `melodygen chroma` CLI is tested in the CLI crate).
//!
//! `melody_tempo.mid` (written by scripts/make_chroma_refs.py) holds the notes of `melody.wav`
//! with a tempo change (100 → 140 BPM) in a separate tempo track, so agreeing with transformers'
//! chroma of the rendered audio proves the tempo map, the frame grid and the "longest class"
//! rule together. They may differ only where the rule must differ from audio: frames where a
//! rest reads as C in audio (MIDI holds the previous class), and frames next to a note change,
//! where the audio's 0.5 s window already hears the neighbouring note.

use std::path::PathBuf;

#[path = "../../tests/support/fixtures.rs"]
mod common;

use common::chroma_reference as reference;
use melodygen_engine::chroma::{melody_from_file, ChromaError};

fn fixtures() -> PathBuf {
    common::fixtures().join("chroma")
}


#[test]
fn midi_file_agrees_with_transformers_on_the_rendered_melody() {
    let midi = melody_from_file(&fixtures().join("melody_tempo.mid")).unwrap();
    let audio = reference("melody", "transformers_argmax");
    assert_eq!(
        midi.frames(),
        audio.len(),
        "MIDI and audio of the same length give the same frame grid"
    );
    let differ: Vec<(usize, u8, u8)> = midi
        .argmax()
        .iter()
        .zip(&audio)
        .enumerate()
        .filter(|(_, (m, a))| m != a)
        .map(|(t, (&m, &a))| (t, m, a))
        .collect();
    eprintln!("MIDI vs transformers on melody: {}/{} frames agree; differing (frame, midi, audio): {differ:?}", audio.len() - differ.len(), audio.len());
    // Every disagreement is either a held rest (audio says C) or at a note change: one side's
    // class is the other side's class in an adjacent frame (the audio window is 4 hops wide).
    let midi_classes = midi.argmax();
    for &(t, m, a) in &differ {
        let around = |v: &[u8], c: u8| v[t.saturating_sub(1)..(t + 2).min(v.len())].contains(&c);
        assert!(
            a == 0 || around(&audio, m) || around(midi_classes, a),
            "frame {t}: MIDI {m}, audio {a}"
        );
    }
    assert!(
        differ.len() * 10 <= audio.len(),
        "more than 10 % of frames differ: {differ:?}"
    );
}

#[test]
fn wav_and_midi_go_through_the_same_entry_point() {
    let wav = melody_from_file(&fixtures().join("scale.wav")).unwrap();
    assert_eq!(wav.argmax(), &reference("scale", "transformers_argmax")[..]);
    assert!(wav
        .one_hot()
        .iter()
        .all(|row| row.iter().sum::<f32>() == 1.0));
    // A MIDI file renamed to .wav is still read as MIDI (content decides).
    let dir = std::env::temp_dir().join(format!("melodygen-chroma-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let renamed = dir.join("melody.wav");
    std::fs::copy(fixtures().join("melody_tempo.mid"), &renamed).unwrap();
    assert_eq!(
        melody_from_file(&renamed).unwrap(),
        melody_from_file(&fixtures().join("melody_tempo.mid")).unwrap()
    );
    let missing = melody_from_file(&dir.join("nope.mid")).unwrap_err();
    assert!(
        matches!(missing, ChromaError::Io { .. }) && missing.to_string().contains("nope.mid"),
        "{missing}"
    );
}
