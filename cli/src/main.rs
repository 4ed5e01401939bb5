//! `melodygen`: the engine's headless command line. Tests and benchmarks drive it; nothing here
//! touches the plugin framework.

mod chroma;
mod download;
mod generate;
mod logits;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "melodygen", version, about = "MusicGen on Candle, headless")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate audio from a text prompt (and optionally a melody).
    Generate(generate::Args),
    /// Print the 12-bin chroma that MusicGen-Melody would be conditioned on.
    Chroma(chroma::Args),
    /// Download a MusicGen model from Hugging Face into the local Hugging Face cache.
    Download(download::Args),
    /// Teacher-forced logits of given codes, as .npy (benchmark and tests: quantized vs f32).
    #[command(hide = true)]
    Logits(logits::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(args) => generate::run(args),
        Command::Chroma(args) => chroma::run(args),
        Command::Download(args) => download::run(args),
        Command::Logits(args) => logits::run(args),
    }
}
