//! Tests of the capture rings ([`super`]).

use super::*;

fn ramp(from: usize, n: usize) -> Vec<f32> {
    (from..from + n).map(|i| i as f32).collect()
}

#[test]
fn mono_mix_and_take_boundaries() {
    let c = Capture::new(100);
    c.write_block(&[&[9.0; 10], &[9.0; 10]]); // before the take: not part of it
    c.start_take(CaptureAnchor {
        seconds: Some(4.0),
        beats: Some(8.0),
        bar: Some(2),
        tempo: Some(120.0),
    });
    c.write_block(&[&[1.0, 2.0], &[3.0, 4.0]]);
    let s = c.snapshot();
    assert_eq!(s.audio, vec![2.0, 3.0]);
    assert_eq!(
        s.anchor,
        CaptureAnchor {
            seconds: Some(4.0),
            beats: Some(8.0),
            bar: Some(2),
            tempo: Some(120.0)
        }
    );
}

#[test]
fn the_ring_keeps_the_last_thirty_seconds_and_moves_the_anchor() {
    let c = Capture::new(10); // 300-sample ring
    c.start_take(CaptureAnchor {
        seconds: Some(1.0),
        beats: Some(2.0),
        bar: Some(0),
        tempo: Some(60.0),
    });
    let mut n = 0;
    for block in [128, 128, 128, 64] {
        let data = ramp(n, block);
        c.write_block(&[&data]);
        n += block;
    }
    let s = c.snapshot();
    assert_eq!(
        s.audio,
        ramp(n - 300, 300),
        "oldest samples overwritten, order kept across the wrap"
    );
    // 148 samples at 10 Hz were dropped: the window starts 14.8 s later (14.8 beats at 60 BPM).
    assert!(
        (s.anchor.seconds.unwrap() - 15.8).abs() < 1e-9
            && (s.anchor.beats.unwrap() - 16.8).abs() < 1e-9
    );
    assert_eq!(s.anchor.bar, None);
}

#[test]
fn notes_are_paired_clipped_and_relative_to_the_window() {
    let c = Capture::new(10);
    c.start_take(UNKNOWN_TIME);
    c.note(5, 60, 1.0, true);
    c.note(20, 64, 0.5, true);
    c.write_block(&[&[0.0; 32]]);
    c.note(8, 60, 0.0, false); // C off at 40
    c.note(9, 67, 0.0, true); // velocity 0 note-on = off: ignored
    c.write_block(&[&[0.0; 32]]); // E held to the end (64)
    let s = c.snapshot();
    assert_eq!(
        s.notes,
        vec![
            Note {
                start: 5,
                end: 40,
                key: 60,
                velocity: 1.0
            },
            Note {
                start: 20,
                end: 64,
                key: 64,
                velocity: 64.0 / 127.0
            },
        ]
    );
    // A new take forgets the old notes.
    c.start_take(UNKNOWN_TIME);
    c.write_block(&[&[0.0; 4]]);
    assert_eq!(c.snapshot().notes, vec![]);
}

#[test]
fn clear_empties_the_take_and_keeps_recording_state() {
    let c = Capture::new(10);
    c.start_take(UNKNOWN_TIME);
    c.note(0, 60, 1.0, true);
    c.write_block(&[&[1.0; 8]]);
    c.honour_clear(UNKNOWN_TIME); // nothing requested: the take stays
    assert_eq!(c.snapshot().audio.len(), 8);
    let before = c.version();
    c.request_clear();
    c.honour_clear(CaptureAnchor { seconds: Some(2.0), ..Default::default() });
    let s = c.snapshot();
    assert!(s.audio.is_empty() && s.notes.is_empty(), "{s:?}");
    assert_eq!(s.anchor.seconds, Some(2.0));
    assert!(c.is_capturing(), "a clear while recording keeps recording");
    assert_ne!(c.version(), before);
    c.write_block(&[&[2.0; 4]]);
    assert_eq!(c.snapshot().audio, vec![2.0; 4]);
    // Stopped: a clear empties the take and leaves recording off.
    c.stop_take();
    c.request_clear();
    c.honour_clear(UNKNOWN_TIME);
    assert!(!c.is_capturing() && c.snapshot().audio.is_empty());
}

#[test]
fn a_long_take_keeps_the_notes_of_its_last_thirty_seconds() {
    // 100 Hz: a 3000-sample window. 60 s of three short notes per 6-sample block: 6000 events,
    // more than the 4096 the old buffer kept from the take's start.
    let c = Capture::new(100);
    c.start_take(UNKNOWN_TIME);
    let mut expected = Vec::new();
    for b in 0..1000u64 {
        let key = |j: u64| (40 + b % 40 + j) as u8;
        for j in 0..3 {
            c.note(j as u32, key(j), 1.0, true);
        }
        for j in 0..3 {
            c.note(3 + j as u32, key(j), 0.0, false);
        }
        c.write_block(&[&[0.0; 6]]);
        if b >= 500 {
            for j in 0..3 {
                let start = 6 * b + j - 3000;
                expected.push(Note { start, end: start + 3, key: key(j), velocity: 1.0 });
            }
        }
    }
    let s = c.snapshot();
    assert_eq!(s.audio.len(), 3000);
    assert_eq!(s.notes.len(), expected.len(), "the notes of the last 30 s, no more, no fewer");
    assert_eq!(s.notes, expected);
}

#[test]
fn a_full_note_ring_keeps_the_newest_events_and_notes_that_began_before_them() {
    // Key 60 is held while more events than the ring holds go by: its note-on leaves the ring,
    // its note-off still ends a note that starts at the window's start (here the take's).
    let c = Capture::new(1000);
    c.start_take(UNKNOWN_TIME);
    c.note(0, 60, 0.5, true);
    let short = NOTE_RING_EVENTS as u64 / 2;
    let mut expected = vec![Note { start: 0, end: 2 * short, key: 60, velocity: 64.0 / 127.0 }];
    for i in 0..short {
        let key = (70 + i % 50) as u8;
        c.note(0, key, 1.0, true);
        c.note(1, key, 0.0, false);
        c.write_block(&[&[0.0; 2]]);
        expected.push(Note { start: 2 * i, end: 2 * i + 1, key, velocity: 1.0 });
    }
    c.note(0, 60, 0.0, false);
    c.write_block(&[&[0.0; 2]]);
    expected.sort_by_key(|n| (n.start, n.key));
    let s = c.snapshot();
    assert_eq!(c.notes_written.load(Ordering::Relaxed), NOTE_RING_EVENTS as u64 + 2);
    assert_eq!(s.notes.len(), expected.len());
    assert_eq!(s.notes, expected);
}

#[test]
fn any_sample_rate_gets_a_usable_ring() {
    for rate in [0, 1, 7, 44_101, 96_000, u32::MAX] {
        let c = Capture::new(rate);
        let len = ring_samples(rate);
        assert!(len >= 1 && len as u64 <= MAX_RING_SAMPLES, "{rate} Hz: {len} samples");
        assert_eq!(c.ring.len(), len);
        c.start_take(CaptureAnchor { seconds: Some(1.0), beats: Some(0.0), bar: None, tempo: Some(120.0) });
        for block in [1usize, 3, 511, 2] {
            c.note(0, 60, 1.0, true);
            c.write_block(&[vec![0.5; block], vec![0.5; block]]);
            c.note(block as u32 / 2, 60, 0.0, false);
        }
        let s = c.snapshot();
        assert_eq!(s.audio.len(), len.min(517), "{rate} Hz");
        assert!(s.audio.iter().all(|&v| v == 0.5));
        assert!(s.anchor.seconds.unwrap().is_finite() && s.anchor.beats.unwrap().is_finite(), "{rate} Hz: {:?}", s.anchor);
    }
    assert_eq!(ring_samples(0), 1);
    assert_eq!(ring_samples(1), 30);
    assert_eq!(ring_samples(44_101), 1_323_030);
}

#[test]
fn channels_of_unequal_length_write_the_frames_they_share() {
    let c = Capture::new(10);
    c.start_take(UNKNOWN_TIME);
    c.write_block(&[vec![1.0; 4], vec![3.0; 2]]);
    assert_eq!(c.snapshot().audio, vec![2.0, 2.0]);
}

#[test]
fn a_reader_racing_the_writer_sees_only_consistent_windows() {
    // The writer writes a ramp (sample value = absolute index) as fast as it can; every
    // snapshot must be a run of consecutive values: no torn or stale slots.
    let c = std::sync::Arc::new(Capture::new(10));
    c.start_take(UNKNOWN_TIME);
    let w = c.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0usize;
        while n < 200_000 {
            let data = ramp(n, 37);
            w.write_block(&[&data]);
            n += 37;
        }
    });
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        let s = c.snapshot();
        assert!(s.audio.len() <= 300);
        for pair in s.audio.windows(2) {
            assert_eq!(pair[1], pair[0] + 1.0, "torn window");
        }
        checked += 1;
    }
    writer.join().unwrap();
}
