//! `melodygen chroma`: prints the chroma MusicGen-Melody would be conditioned on, from a WAV or
//! a MIDI file, through the same `engine::chroma::melody_from_file` that `generate --melody`
//! uses.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use melodygen_engine::chroma::{melody_from_file, Chroma};

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("melody").required(true).args(["file", "midi"])))]
pub struct Args {
    /// Melody audio (WAV, any rate and channel count). A MIDI file given here works too.
    file: Option<PathBuf>,
    /// Melody as a standard MIDI file (.mid).
    #[arg(long, value_name = "FILE.mid")]
    midi: Option<PathBuf>,
    /// Print JSON: {"frames": N, "argmax": [...], "one_hot": [[12 numbers], ...]}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.file.or(args.midi).expect("clap requires one of them");
    let chroma = melody_from_file(&path)
        .with_context(|| format!("cannot compute the chroma of {}", path.display()))?;
    match print(&chroma, args.json) {
        // `melodygen chroma x.wav | head` closes the pipe early: that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("cannot write to stdout")?),
    }
}

fn print(chroma: &Chroma, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", to_json(chroma))?;
    } else {
        writeln!(out, "frames: {}", chroma.frames())?;
        for (t, &c) in chroma.argmax().iter().enumerate() {
            writeln!(out, "{t}\t{c}\t{}", NAMES[usize::from(c)])?;
        }
    }
    out.flush()
}

fn to_json(chroma: &Chroma) -> serde_json::Value {
    serde_json::json!({
        "frames": chroma.frames(),
        "argmax": chroma.argmax(),
        "one_hot": chroma.one_hot(),
    })
}
