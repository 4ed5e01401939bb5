//! The exact melody conditioning a clip was made with, stored with the clip so it can be made
//! again later, whatever is captured by then.
//!
//! MusicGen-Melody does not see the melody itself, only the one-hot argmax chroma: one pitch
//! class per chroma frame (hop 4096 samples at 32 kHz). So the record keeps just that — one
//! character per frame — and [`MelodyRecord::one_hot`] rebuilds frames identical to the ones the
//! model received: the same record gives the same clip, bit for bit.

use super::{Melody, MelodySource, Note};
use crate::chroma::{self, ChromaError, ChromaExtractor, NoteEvent, NoteEventKind, HOP, MAX_FRAMES, N_CHROMA, SAMPLE_RATE};
use serde::{Deserialize, Serialize};

/// Chroma frames per second of the engine (32000 / 4096 = 7.8125, exact in binary).
pub const FRAME_RATE: f64 = SAMPLE_RATE as f64 / HOP as f64;

/// One digit per pitch class (0 = C … 9 = A, `a` = A#, `b` = B), as in hexadecimal.
const DIGITS: &[u8; N_CHROMA] = b"0123456789ab";

/// Why a melody could not be recorded or replayed. Every message is meant for a producer (the
/// plugin shows it as the job's error, the CLI prints it).
#[derive(Debug, thiserror::Error)]
pub enum MelodyError {
    /// A pitch class outside 0–11 was given to [`MelodyRecord::from_pitch_classes`].
    #[error("pitch class {0} is not 0-11")]
    PitchClass(u8),
    /// The audio capture holds no samples.
    #[error(
        "no melody was captured: play the track (or arm the capture) before generating, \
         or set the melody source to none"
    )]
    NoAudio,
    /// The MIDI capture holds no notes.
    #[error(
        "no MIDI notes were captured: play the track's notes before generating, \
         or set the melody source to audio or none"
    )]
    NoNotes,
    /// The chroma of the captured melody could not be computed.
    #[error(transparent)]
    Chroma(#[from] ChromaError),
    /// The record was made at another chroma frame rate than this version's.
    #[error("the recorded melody is at {found} chroma frames/s, this version uses {FRAME_RATE}")]
    FrameRate {
        /// The record's frame rate.
        found: f64,
    },
    /// The record is longer than the engine takes.
    #[error("the recorded melody has {frames} frames, at most {MAX_FRAMES} are used")]
    TooLong {
        /// The record's frame count.
        frames: usize,
    },
    /// A character of the record is not a pitch-class digit (a damaged record).
    #[error("the recorded melody has '{found}' at frame {frame} (expected 0-9, a, b)")]
    BadFrame {
        /// The character found.
        found: char,
        /// Its frame, from 0.
        frame: usize,
    },
}

/// The pitch class the model followed in every chroma frame of one clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MelodyRecord {
    /// Where the melody came from (audio or MIDI); informative, the frames are the conditioning.
    pub source: MelodySource,
    /// One character per frame, `0`–`9`, `a`, `b` (C … B): at most 235 characters for 30 s.
    pub pitch_classes: String,
    /// Chroma frames per second the record was made at ([`FRAME_RATE`]); a record made at
    /// another rate is refused rather than replayed at the wrong speed.
    pub frame_rate: f64,
}

impl MelodyRecord {
    /// A record of the given pitch classes (0–11) at the engine's frame rate.
    pub fn from_pitch_classes(source: MelodySource, classes: &[u8]) -> Result<Self, MelodyError> {
        let pitch_classes = classes
            .iter()
            .map(|&c| DIGITS.get(usize::from(c)).map(|&d| d as char).ok_or(MelodyError::PitchClass(c)))
            .collect::<Result<String, MelodyError>>()?;
        Ok(Self { source, pitch_classes, frame_rate: FRAME_RATE })
    }

    /// Computes the conditioning of a captured melody exactly as the engine would (chroma of
    /// the audio or of the notes, then its per-frame argmax). `None` for no melody (or a record
    /// being replayed: then it is returned as it is). The errors are the producer-facing ones
    /// for an empty capture.
    pub fn capture(melody: &Melody) -> Result<Option<MelodyRecord>, MelodyError> {
        let (source, chroma) = match melody {
            Melody::None => return Ok(None),
            Melody::Recorded(record) => return Ok(Some(record.clone())),
            Melody::Audio { samples, .. } if samples.is_empty() => return Err(MelodyError::NoAudio),
            Melody::Audio { samples, sample_rate } => (
                MelodySource::Audio,
                ChromaExtractor::new().chroma(&[samples], *sample_rate)?,
            ),
            Melody::Notes { notes, .. } if notes.is_empty() => return Err(MelodyError::NoNotes),
            Melody::Notes { notes, frames, sample_rate } => {
                let events = note_events(notes);
                (
                    MelodySource::Midi,
                    chroma::chroma_from_notes(&events, *sample_rate, Some(*frames))?,
                )
            }
        };
        Self::from_pitch_classes(source, chroma.argmax()).map(Some)
    }

    /// Number of chroma frames.
    pub fn frames(&self) -> usize {
        self.pitch_classes.len()
    }

    /// Seconds of melody the record covers.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.frame_rate
    }

    /// The pitch class (0–11) of every frame; names the first bad character of a damaged
    /// record, and refuses one made at another frame rate or longer than the engine takes.
    pub fn classes(&self) -> Result<Vec<u8>, MelodyError> {
        if self.frame_rate != FRAME_RATE {
            return Err(MelodyError::FrameRate { found: self.frame_rate });
        }
        if self.frames() > MAX_FRAMES {
            return Err(MelodyError::TooLong { frames: self.frames() });
        }
        self.pitch_classes
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                DIGITS
                    .iter()
                    .position(|&d| d == b)
                    .map(|c| c as u8)
                    .ok_or(MelodyError::BadFrame { found: b as char, frame: i })
            })
            .collect()
    }

    /// The one-hot frames the model received (`frames × 12`, 1.0 on the recorded class).
    pub fn one_hot(&self) -> Result<Vec<[f32; N_CHROMA]>, MelodyError> {
        Ok(self
            .classes()?
            .into_iter()
            .map(|c| {
                let mut row = [0.0; N_CHROMA];
                row[usize::from(c)] = 1.0;
                row
            })
            .collect())
    }
}


/// Captured notes as the note-on/off events the engine's MIDI chroma takes (velocity 0..1 back
/// to 1..=127), in time order. The worker's jobs and the window's melody preview both use it, so
/// the picture shows exactly what a job will follow.
pub fn note_events(notes: &[Note]) -> Vec<NoteEvent> {
    let mut events: Vec<NoteEvent> = notes
        .iter()
        .flat_map(|n| {
            let velocity = (n.velocity * 127.0).round().clamp(1.0, 127.0) as u8;
            [
                NoteEvent { sample: n.start, kind: NoteEventKind::On { note: n.key, velocity } },
                NoteEvent { sample: n.end, kind: NoteEventKind::Off { note: n.key } },
            ]
        })
        .collect();
    events.sort_by_key(|e| e.sample);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect()
    }

    /// The record of a captured audio melody rebuilds exactly the engine's one-hot chroma of
    /// that audio, and survives JSON unchanged.
    #[test]
    fn audio_record_replays_the_engine_one_hot_and_round_trips_json() {
        // A (440 Hz) for 1 s, then E (659.26 Hz) for 1 s, at a host rate.
        let mut samples = sine(48_000, 440.0, 1.0);
        samples.extend(sine(48_000, 659.255, 1.0));
        let melody = Melody::Audio { samples: samples.clone(), sample_rate: 48_000 };
        let record = MelodyRecord::capture(&melody).unwrap().unwrap();
        let engine = ChromaExtractor::new().chroma(&[&samples], 48_000).unwrap();
        assert_eq!(record.one_hot().unwrap(), engine.one_hot().to_vec());
        assert_eq!(record.frames(), engine.frames());
        assert_eq!(record.source, MelodySource::Audio);
        // The melody is really in there: A early, E late.
        assert_eq!(&record.pitch_classes[2..4], "99", "{}", record.pitch_classes);
        assert_eq!(&record.pitch_classes[record.frames() - 4..record.frames() - 2], "44", "{}", record.pitch_classes);
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<MelodyRecord>(&json).unwrap(), record);
        // Replaying a record gives the record.
        assert_eq!(MelodyRecord::capture(&Melody::Recorded(record.clone())).unwrap(), Some(record));
    }

    #[test]
    fn damaged_or_foreign_records_are_refused_with_the_reason() {
        let mut r = MelodyRecord::from_pitch_classes(MelodySource::Midi, &[0, 11, 4]).unwrap();
        assert_eq!(r.pitch_classes, "0b4");
        assert_eq!(r.classes().unwrap(), vec![0, 11, 4]);
        r.pitch_classes = "0x4".into();
        assert!(r.one_hot().unwrap_err().to_string().contains("'x' at frame 1"));
        r.pitch_classes = "04".into();
        r.frame_rate = 50.0;
        assert!(r.one_hot().unwrap_err().to_string().contains("50 chroma frames/s"));
        assert!(MelodyRecord::from_pitch_classes(MelodySource::Audio, &[12]).is_err());
        assert_eq!(MelodyRecord::capture(&Melody::None).unwrap(), None);
        assert!(MelodyRecord::capture(&Melody::Audio { samples: vec![], sample_rate: 48_000 })
            .unwrap_err()
            .to_string()
            .contains("no melody was captured"));
    }
}
