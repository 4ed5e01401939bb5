//! Chroma from MIDI notes: host note events (sample positions at the host rate) or a standard
//! MIDI file, on the same frame grid as the audio chroma.
//!
//! ## The rule
//! - Frame `t` is the hop-wide span centred where the audio chroma's frame `t` is centred:
//!   `[(t − ½)·hop, (t + ½)·hop)` with hop = 4096 samples at 32 kHz (128 ms). Frame count as for
//!   audio of the same length: `1 + ⌊len₃₂ₖ / 4096⌋`, at most 235 (30 s).
//! - In each frame the pitch class that sounds longest wins (octaves of one class count once:
//!   the union of their spans). Ties go to the class with the louder note (highest velocity),
//!   then to the class with the lower note.
//! - A frame where nothing sounds holds the previous frame's class, and frames before the first
//!   note take the first note's class. Why: MusicGen-Melody has no "rest" symbol; the audio path
//!   turns silence into C (argmax of an all-zero frame), so an unheld rest would inject a C
//!   that is not in the melody. Holding keeps the harmony of the phrase.
//! - In a MIDI file, channel 10 (General MIDI drums) is ignored: its note numbers are drum
//!   sounds, not pitches.

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

use super::filterbank::N_CHROMA;
use super::{Chroma, ChromaError, HOP, MAX_FRAMES, SAMPLE_RATE};

/// A note-on or note-off at a sample position (host rate), as the plugin receives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteEvent {
    /// Position in samples from the start of the captured melody, at the host rate.
    pub sample: u64,
    /// Note-on or note-off, and which note.
    pub kind: NoteEventKind,
}

/// What a [`NoteEvent`] does to a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteEventKind {
    /// A note-on with velocity 0 is treated as a note-off (MIDI running-status convention).
    On {
        /// MIDI note number (60 = middle C).
        note: u8,
        /// MIDI velocity, 1..=127 (0 means note-off).
        velocity: u8,
    },
    /// The note stops sounding.
    Off {
        /// MIDI note number.
        note: u8,
    },
}

/// A sounding note: `[start, end)` in host samples.
#[derive(Debug, Clone, Copy)]
struct Note {
    start: u64,
    end: u64,
    note: u8,
    velocity: u8,
}

/// Chroma of note events at `sample_rate`. `length` is the captured length in samples (the
/// frame count follows from it); `None` ends the melody at the last event. Notes still held
/// at the end sound until then.
pub fn chroma_from_notes(
    events: &[NoteEvent],
    sample_rate: u32,
    length: Option<u64>,
) -> Result<Chroma, ChromaError> {
    chroma_from_events(events, sample_rate, length, "host notes")
}

fn chroma_from_events(
    events: &[NoteEvent],
    sample_rate: u32,
    length: Option<u64>,
    origin: &str,
) -> Result<Chroma, ChromaError> {
    if sample_rate == 0 {
        return Err(ChromaError::ZeroSampleRate);
    }
    let no_notes = || ChromaError::NoNotes {
        origin: origin.to_string(),
    };
    let last_event = events.iter().map(|e| e.sample).max().ok_or_else(no_notes)?;
    let length = length.unwrap_or(last_event);
    let notes = pair_notes(events, length);

    // Frame grid in host samples: frame t spans [edge(t), edge(t + 1)), edge(t) = (t − ½)·hop.
    let rate = u128::from(sample_rate);
    let len_32k = (u128::from(length) * u128::from(SAMPLE_RATE) + rate / 2) / rate;
    let frames = (1 + len_32k as usize / HOP).min(MAX_FRAMES);
    let edge = |t: usize| -> u64 {
        let twice = (2 * t as u128 * HOP as u128 * rate).saturating_sub(HOP as u128 * rate);
        ((twice + u128::from(SAMPLE_RATE)) / (2 * u128::from(SAMPLE_RATE))) as u64
    };

    let mut classes: Vec<Option<usize>> = Vec::with_capacity(frames);
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for t in 0..frames {
        let (lo, hi) = (edge(t), edge(t + 1));
        // (sounding time, loudest velocity, −lowest note) per class; larger is better.
        let mut best: Option<(u64, u8, i16, usize)> = None;
        for class in 0..N_CHROMA {
            spans.clear();
            let (mut velocity, mut lowest) = (0u8, u8::MAX);
            for n in notes
                .iter()
                .filter(|n| usize::from(n.note) % N_CHROMA == class)
            {
                let (s, e) = (n.start.max(lo), n.end.min(hi));
                if s < e {
                    spans.push((s, e));
                    velocity = velocity.max(n.velocity);
                    lowest = lowest.min(n.note);
                }
            }
            let sounding = union_length(&mut spans);
            if sounding == 0 {
                continue;
            }
            let key = (sounding, velocity, -i16::from(lowest), class);
            if best.is_none_or(|b| (key.0, key.1, key.2) > (b.0, b.1, b.2)) {
                best = Some(key);
            }
        }
        classes.push(best.map(|b| b.3));
    }

    let first = classes
        .iter()
        .flatten()
        .next()
        .copied()
        .ok_or_else(no_notes)?;
    let mut held = first;
    let normalized = classes
        .into_iter()
        .map(|c| {
            held = c.unwrap_or(held);
            let mut row = [0.0; N_CHROMA];
            row[held] = 1.0;
            row
        })
        .collect();
    Ok(Chroma::from_normalized(normalized))
}

/// Pairs ons with offs per note number, first-in first-out; events at the same sample are
/// taken offs first, so a repeated note re-struck on the same sample is two notes.
fn pair_notes(events: &[NoteEvent], length: u64) -> Vec<Note> {
    let mut sorted: Vec<NoteEvent> = events.to_vec();
    let is_on =
        |e: &NoteEvent| matches!(e.kind, NoteEventKind::On { velocity, .. } if velocity > 0);
    sorted.sort_by_key(|e| (e.sample, is_on(e)));
    let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 128];
    let mut notes = Vec::new();
    for e in &sorted {
        match e.kind {
            NoteEventKind::On { note, velocity } if velocity > 0 => {
                open[usize::from(note & 0x7f)].push((e.sample, velocity));
            }
            NoteEventKind::On { note, .. } | NoteEventKind::Off { note } => {
                let stack = &mut open[usize::from(note & 0x7f)];
                if !stack.is_empty() {
                    let (start, velocity) = stack.remove(0);
                    notes.push(Note {
                        start,
                        end: e.sample,
                        note: note & 0x7f,
                        velocity,
                    });
                }
            }
        }
    }
    for (note, stack) in open.into_iter().enumerate() {
        for (start, velocity) in stack {
            notes.push(Note {
                start,
                end: length.max(start),
                note: note as u8,
                velocity,
            });
        }
    }
    notes
}

/// Total length covered by possibly overlapping spans (sorts `spans`).
fn union_length(spans: &mut [(u64, u64)]) -> u64 {
    spans.sort_unstable();
    let (mut total, mut reach) = (0u64, 0u64);
    for &(s, e) in spans.iter() {
        let s = s.max(reach);
        if e > s {
            total += e - s;
            reach = e;
        }
    }
    total
}

/// Chroma of a standard MIDI file (format 0, 1 or 2, metrical timing, tempo changes honoured).
/// Times are converted through the tempo map to 32 kHz samples; the melody ends at the last
/// event of the file (its end-of-track marker).
pub fn chroma_from_smf(bytes: &[u8]) -> Result<Chroma, ChromaError> {
    let origin = "MIDI data";
    let smf = Smf::parse(bytes).map_err(|source| ChromaError::Midi {
        origin: origin.into(),
        source,
    })?;
    let Timing::Metrical(tpq) = smf.header.timing else {
        return Err(ChromaError::MidiTimecode {
            origin: origin.into(),
        });
    };
    let tpq = f64::from(tpq.as_int().max(1));

    // Absolute ticks of every event of every track.
    let mut tempos: Vec<(u64, u32)> = Vec::new();
    let mut raw: Vec<(u64, NoteEventKind)> = Vec::new();
    let mut end_tick = 0u64;
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += u64::from(ev.delta.as_int());
            end_tick = end_tick.max(tick);
            match ev.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => tempos.push((tick, us.as_int())),
                TrackEventKind::Midi { channel, message } if channel.as_int() != 9 => match message
                {
                    MidiMessage::NoteOn { key, vel } => raw.push((
                        tick,
                        NoteEventKind::On {
                            note: key.as_int(),
                            velocity: vel.as_int(),
                        },
                    )),
                    MidiMessage::NoteOff { key, .. } => {
                        raw.push((tick, NoteEventKind::Off { note: key.as_int() }))
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    tempos.sort_by_key(|t| t.0);

    // Tick → seconds through the tempo map (default 120 BPM until the first tempo event).
    let seconds = |tick: u64| -> f64 {
        let (mut at_tick, mut at_s, mut us_per_beat) = (0u64, 0.0f64, 500_000.0f64);
        for &(t, us) in tempos.iter().take_while(|(t, _)| *t <= tick) {
            at_s += (t - at_tick) as f64 / tpq * us_per_beat * 1e-6;
            at_tick = t;
            us_per_beat = f64::from(us);
        }
        at_s + (tick - at_tick) as f64 / tpq * us_per_beat * 1e-6
    };
    let to_sample = |tick: u64| (seconds(tick) * f64::from(SAMPLE_RATE)).round() as u64;
    let events: Vec<NoteEvent> = raw
        .iter()
        .map(|&(tick, kind)| NoteEvent {
            sample: to_sample(tick),
            kind,
        })
        .collect();
    if events.is_empty() {
        return Err(ChromaError::NoNotes {
            origin: origin.into(),
        });
    }
    chroma_from_events(&events, SAMPLE_RATE, Some(to_sample(end_tick)), origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C4: u8 = 60;
    const E4: u8 = 64;
    const G4: u8 = 67;

    fn note(start: u64, end: u64, note: u8, velocity: u8) -> [NoteEvent; 2] {
        [
            NoteEvent {
                sample: start,
                kind: NoteEventKind::On { note, velocity },
            },
            NoteEvent {
                sample: end,
                kind: NoteEventKind::Off { note },
            },
        ]
    }

    fn run(notes: &[[NoteEvent; 2]], length: Option<u64>) -> Vec<u8> {
        let events: Vec<NoteEvent> = notes.iter().flatten().copied().collect();
        // At 32 kHz frame t spans [4096t − 2048, 4096t + 2048).
        chroma_from_notes(&events, 32_000, length)
            .unwrap()
            .argmax()
            .to_vec()
    }

    #[test]
    fn a_scale_gives_one_class_per_note_and_a_leading_rest_takes_the_first() {
        // Note i covers frames 4i+1 ..= 4i+4 exactly: [16384i + 2048, 16384(i+1) + 2048).
        let scale = [60u8, 62, 64, 65, 67, 69, 71, 72];
        let notes: Vec<_> = scale
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                note(
                    16_384 * i as u64 + 2048,
                    16_384 * (i as u64 + 1) + 2048,
                    n,
                    100,
                )
            })
            .collect();
        let got = run(&notes, None);
        let mut expected = vec![0u8]; // frame 0 is a rest before C4 → takes C
        for n in scale {
            expected.extend([n % 12; 4]);
        }
        assert_eq!(got, expected);
        assert_eq!(got.len(), 33); // 1 + 133120 / 4096
    }

    #[test]
    fn overlapping_notes_and_notes_crossing_frame_edges_go_to_the_longest() {
        // E [0, 10000), G [6000, 20000): frame 1 [2048, 6144) E 4096 vs G 144 → E;
        // frame 2 [6144, 10240) E 3856 vs G 4096 → G.
        let got = run(
            &[note(0, 10_000, E4, 100), note(6_000, 20_000, G4, 100)],
            None,
        );
        assert_eq!(&got[..4], &[4, 4, 7, 7]);
        // X [0, 3000), Y [3000, 9000): frame 1 [2048, 6144): X 952, Y 3144 → Y.
        let got = run(
            &[note(0, 3_000, C4, 100), note(3_000, 9_000, E4, 100)],
            Some(9_000),
        );
        assert_eq!(got, vec![0, 4, 4]);
    }

    #[test]
    fn chords_tie_break_on_velocity_then_the_lower_note_and_octaves_count_once() {
        let triad = |vc, ve, vg| {
            [
                note(0, 8192, C4, vc),
                note(0, 8192, E4, ve),
                note(0, 8192, G4, vg),
            ]
        };
        assert_eq!(run(&triad(90, 90, 90), Some(8192)), vec![0, 0, 0]);
        assert_eq!(run(&triad(90, 120, 90), Some(8192)), vec![4, 4, 4]);
        // Same velocity, E4 vs G3 (lower note wins the tie).
        assert_eq!(
            run(&[note(0, 8192, E4, 80), note(0, 8192, 55, 80)], Some(8192)),
            vec![7, 7, 7]
        );
        // Frame 1 [2048, 6144): C4 then C5 cover it all (union 4096) vs E over 3000 → C,
        // although no single C note is longer than E.
        let got = run(
            &[
                note(2048, 4096, C4, 100),
                note(4096, 6144, 72, 100),
                note(2048, 5048, E4, 100),
            ],
            Some(6144),
        );
        assert_eq!(got[1], 0);
    }

    #[test]
    fn rests_hold_the_previous_class() {
        // G for frames 0–1, silence for frames 2–5, E from frame 6.
        let got = run(
            &[note(0, 6144, G4, 100), note(22_528, 30_720, E4, 100)],
            None,
        );
        assert_eq!(got, vec![7, 7, 7, 7, 7, 7, 4, 4]);
        // Note-on with velocity 0 ends a note (running-status files).
        let events = [
            NoteEvent {
                sample: 0,
                kind: NoteEventKind::On {
                    note: G4,
                    velocity: 90,
                },
            },
            NoteEvent {
                sample: 6144,
                kind: NoteEventKind::On {
                    note: G4,
                    velocity: 0,
                },
            },
            NoteEvent {
                sample: 14_336,
                kind: NoteEventKind::On {
                    note: E4,
                    velocity: 90,
                },
            },
        ];
        let got = chroma_from_notes(&events, 32_000, Some(20_480)).unwrap();
        assert_eq!(got.argmax(), &[7, 7, 7, 7, 4, 4]);
    }

    #[test]
    fn host_rate_positions_map_onto_the_32k_grid() {
        // At 48 kHz frame t spans [6144t − 3072, 6144t + 3072) host samples.
        let events: Vec<_> = [note(0, 9216, E4, 100), note(9216, 30_720, G4, 100)].concat();
        let got = chroma_from_notes(&events, 48_000, None).unwrap();
        assert_eq!(got.argmax(), &[4, 4, 7, 7, 7, 7]); // 30720 @48k = 20480 @32k → 6 frames
    }

    #[test]
    fn no_notes_is_an_error_naming_the_origin() {
        let e = chroma_from_notes(&[], 48_000, Some(1000)).unwrap_err();
        assert!(e.to_string().contains("host notes"), "{e}");
    }

    /// A format-1 file: 120 BPM, then 240 BPM from beat 2, 480 ticks per beat. C4 beats 0–2
    /// (0–1 s), E4 beats 2–4 (1–1.5 s), G4 beats 4–6 (1.5–2 s), plus a drum hit on channel 10
    /// that must be ignored. Without the tempo change G4 would start at 2 s.
    #[test]
    fn a_midi_file_follows_its_tempo_map_and_ignores_drums() {
        use midly::num::{u15, u24, u28, u4, u7};
        use midly::{Format, Header, TrackEvent};
        let ev = |delta: u32, kind| TrackEvent {
            delta: u28::new(delta),
            kind,
        };
        let midi = |delta, ch: u8, message| {
            ev(
                delta,
                TrackEventKind::Midi {
                    channel: u4::new(ch),
                    message,
                },
            )
        };
        let on = |key: u8| MidiMessage::NoteOn {
            key: u7::new(key),
            vel: u7::new(100),
        };
        let off = |key: u8| MidiMessage::NoteOff {
            key: u7::new(key),
            vel: u7::new(0),
        };
        let eot = TrackEventKind::Meta(MetaMessage::EndOfTrack);
        let tempo_track = vec![
            ev(
                0,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))),
            ),
            ev(
                960,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(250_000))),
            ),
            ev(0, eot),
        ];
        let notes = vec![
            midi(0, 0, on(C4)),
            midi(960, 0, off(C4)),
            midi(0, 0, on(E4)),
            midi(0, 9, on(38)), // snare on the drum channel, held to the end
            midi(960, 0, off(E4)),
            midi(0, 0, on(G4)),
            midi(960, 0, off(G4)),
            midi(0, 9, off(38)),
            ev(0, eot),
        ];
        let smf = Smf {
            header: Header {
                format: Format::Parallel,
                timing: Timing::Metrical(u15::new(480)),
            },
            tracks: vec![tempo_track, notes],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let got = chroma_from_smf(&bytes).unwrap();
        // Ends at 2 s = 64000 samples → 16 frames. Frame 8 [30720, 34816): C 1280, E 2816 → E.
        // Frame 12 [47104, 51200): E 896, G 3200 → G.
        let mut expected = vec![0u8; 8];
        expected.extend([4; 4]);
        expected.extend([7; 4]);
        assert_eq!(got.argmax(), &expected[..]);
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            chroma_from_smf(b"MThd\0\0\0\x06oops"),
            Err(ChromaError::Midi { .. })
        ));
    }
}
