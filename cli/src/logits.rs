//! `melodygen logits` (hidden; for scripts/bench.py and the quantization tests): the
//! teacher-forced logits of every step of a generation whose codes are given, so a quantized
//! model can be compared with f32 on exactly the same inputs.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use melodygen_engine::checkpoint::resolve_model;
use melodygen_engine::chroma::melody_from_file;
use melodygen_engine::musicgen::teacher::teacher_forced_logits;
use melodygen_engine::musicgen::{LoadOptions, MusicGen, Prompt, Quant};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("text").required(true).args(["prompt", "token_ids"])))]
pub struct Args {
    /// Model folder or Hugging Face repo id in the local cache.
    #[arg(long, value_name = "DIR|REPO_ID")]
    model: String,
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    #[arg(long, value_name = "1,2,3", value_delimiter = ',')]
    token_ids: Option<Vec<u32>>,
    /// Melody (MusicGen-Melody models), as for `generate`.
    #[arg(long, value_name = "FILE.wav|FILE.mid")]
    melody: Option<PathBuf>,
    /// The codes to feed: a `generate --codes-out` file ({"codes": [[...], ...]}).
    #[arg(long, value_name = "CODES.json")]
    codes: PathBuf,
    /// Decoder steps of the generation that made the codes.
    #[arg(long, value_name = "N")]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
    #[arg(long, value_name = "f32|q8_0|q4k", default_value = "f32")]
    quant: Quant,
    /// Output: the logits (N, K, vocab) f32 as .npy.
    #[arg(long, value_name = "LOGITS.npy")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = resolve_model(&args.model)?;
    let model = MusicGen::load_with(&dir, &Device::Cpu, &LoadOptions { quant: args.quant, ..Default::default() })
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    let text = match (args.prompt, args.token_ids) {
        (Some(p), _) => Prompt::Text(p),
        (None, Some(ids)) => Prompt::TokenIds(ids),
        (None, None) => unreachable!("clap requires --prompt or --token-ids"),
    };
    let ids = model.tokenize(&text)?;
    let chroma = match &args.melody {
        Some(path) => Some(melody_from_file(path).with_context(|| format!("cannot read {}", path.display()))?.one_hot().to_vec()),
        None => None,
    };
    #[derive(serde::Deserialize)]
    struct Codes {
        codes: Vec<Vec<u32>>,
    }
    let text = std::fs::read_to_string(&args.codes).with_context(|| format!("cannot read {}", args.codes.display()))?;
    let codes: Codes = serde_json::from_str(&text).with_context(|| format!("{} is not a codes file", args.codes.display()))?;
    let logits = teacher_forced_logits(&model, &ids, chroma.as_deref(), &codes.codes, args.max_new_tokens, args.guidance)?;
    logits.write_npy(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {} {:?} ({})", args.out.display(), logits.dims(), model.quant_report());
    Ok(())
}
