//! `melodygen generate`: text (and optionally melody) → 32-bit float WAV, headless.
//!
//! Defaults follow audiocraft (top-k 250, top-p off, temperature 1, guidance 3, 10 s). The seed
//! is random unless given, and always printed, so any run can be repeated exactly.
//! `--from-clip clip.json` repeats a plugin clip from its sidecar (settings and melody).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressStyle};
use melodygen_engine::checkpoint::resolve_model;
use melodygen_engine::chroma::melody_from_file;
use melodygen_engine::musicgen::{
    max_new_tokens_for_seconds, GenerationRequest, Generated, LoadOptions, MusicGen, Prompt, Quant,
};
use melodygen_engine::musicgen::{StreamConfig, StreamingDecoder};
use melodygen_engine::wav::{self, Audio};
use melodygen_engine::record::{ClipMeta, JobSettings, MelodyRecord, MelodySource};
use serde_json::json;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("text").required(true).args(["prompt", "token_ids", "from_clip"])))]
pub struct Args {
    /// Model folder (config.json, safetensors, tokenizer.json) or a Hugging Face repo id already
    /// in the local HF cache (e.g. facebook/musicgen-small). Required unless --from-clip gives
    /// it (then it overrides the clip's model).
    #[arg(long, value_name = "DIR|REPO_ID", required_unless_present = "from_clip")]
    model: Option<String>,
    /// Make a plugin clip again from its sidecar (`clip.json` beside `clip.wav`): its prompt,
    /// seed, sampling settings, weight format, length and the melody it followed. The WAV is
    /// written at the model rate (the plugin's file is that audio converted to the host rate).
    #[arg(long, value_name = "CLIP.json", conflicts_with_all = [
        "prompt", "token_ids", "melody", "duration", "max_new_tokens", "seed", "top_k", "top_p",
        "temperature", "guidance", "greedy", "quant",
    ])]
    from_clip: Option<PathBuf>,
    /// Text prompt.
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// T5 token ids instead of a text prompt (include the trailing 1 = </s>).
    #[arg(long, value_name = "1,2,3", value_delimiter = ',')]
    token_ids: Option<Vec<u32>>,
    /// Melody to follow (MusicGen-Melody models): a WAV (any rate/channels) or a MIDI file.
    #[arg(long, value_name = "FILE.wav|FILE.mid")]
    melody: Option<PathBuf>,
    /// Length in seconds (at most 30); default 10.
    #[arg(long, value_name = "SECONDS", conflicts_with = "max_new_tokens")]
    duration: Option<f64>,
    /// Decoder steps, as transformers' max_new_tokens (frames = N − 3).
    #[arg(long, value_name = "N")]
    max_new_tokens: Option<usize>,
    /// Random seed (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 250)]
    top_k: usize,
    /// Nucleus sampling mass (0 = off).
    #[arg(long, default_value_t = 0.0)]
    top_p: f32,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Classifier-free guidance scale (≤ 1 = off).
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
    /// Arg-max decoding (deterministic; ignores sampling settings).
    #[arg(long)]
    greedy: bool,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Decoder dtype; f16/bf16 only on a GPU (T5 and EnCodec always run in f32).
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    dtype: DtypeArg,
    /// Weight format of the decoder's linear layers on the CPU: f32 (exact), q8_0 (8-bit,
    /// near-lossless, ~3x faster) or q4k (4-bit, fastest, audibly different). Layers whose size
    /// does not fit the format's blocks fall back (q4k -> q8_0 -> f32) and are reported.
    #[arg(long, value_name = "f32|q8_0|q4k", default_value = "f32")]
    quant: Quant,
    /// Output WAV (32-bit float, 32 kHz, one channel per model channel).
    #[arg(long, value_name = "OUT.wav")]
    out: PathBuf,
    /// Also write the generated codes as JSON: {"codes": [[...], ...]} (one row per codebook).
    #[arg(long, value_name = "CODES.json")]
    codes_out: Option<PathBuf>,
    /// Also write phase timings as JSON (seconds from the start of generation, model load
    /// excluded): load, text encode, every decoder step's end (wall clock, streaming decode
    /// included), first_audio_s (when the first audio chunk existed; the end with --no-stream),
    /// stream_decode_s (decode work done between steps), decode_s (after the last step), total.
    /// Read by scripts/bench.py.
    #[arg(long, value_name = "TIMINGS.json")]
    timings_json: Option<PathBuf>,
    /// Decode the clip once at the end instead of streaming. By default the frames whose codes
    /// are complete are decoded between steps, so audio exists long before the last step; the
    /// WAV is the same either way (the streaming decode equals the one-shot decode).
    #[arg(long)]
    no_stream: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
    Metal,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DtypeArg {
    F32,
    F16,
    Bf16,
}

fn device(arg: DeviceArg) -> anyhow::Result<Device> {
    Ok(match arg {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => Device::new_cuda(0).context("cannot open CUDA device 0 (built with --features cuda?)")?,
        DeviceArg::Metal => Device::new_metal(0).context("cannot open the Metal device (built with --features metal?)")?,
    })
}

/// What `--from-clip` takes from a sidecar: everything the plugin's worker generated with.
struct FromClip {
    model: String,
    seconds: f32,
    settings: JobSettings,
    melody: Option<MelodyRecord>,
}

fn read_clip(path: &std::path::Path) -> anyhow::Result<FromClip> {
    let meta = ClipMeta::read_sidecar(path)?;
    // The folder the clip was made with when it is still there, else the model choice.
    let model = match &meta.model_dir {
        Some(dir) if dir.is_dir() => dir.to_string_lossy().into_owned(),
        _ => meta.settings.params.model.clone(),
    };
    if meta.melody.is_none() && meta.settings.params.melody_source != MelodySource::None {
        eprintln!(
            "note: {} has no recorded melody (made before melodies were saved, or by a model without \
             melody input): generating from the prompt alone",
            path.display()
        );
    }
    Ok(FromClip { model, seconds: meta.seconds, settings: meta.settings, melody: meta.melody })
}

/// The request of a run without `--from-clip`: the prompt (or token ids), the length and the
/// sampling settings as given, a random seed unless one is.
fn request_from_args(args: &Args) -> anyhow::Result<GenerationRequest> {
    let max_new_tokens = match (args.max_new_tokens, args.duration) {
        (Some(n), _) => n,
        (None, Some(s)) => max_new_tokens_for_seconds(s)?,
        (None, None) => max_new_tokens_for_seconds(10.0)?,
    };
    let text = match (&args.prompt, &args.token_ids) {
        (Some(p), _) => Prompt::Text(p.clone()),
        (None, Some(ids)) => Prompt::TokenIds(ids.clone()),
        (None, None) => unreachable!("clap requires --prompt or --token-ids"),
    };
    let req = GenerationRequest {
        text,
        max_new_tokens,
        seed: args.seed.unwrap_or_else(rand::random),
        top_k: args.top_k,
        top_p: args.top_p,
        temperature: args.temperature,
        guidance: args.guidance,
        greedy: args.greedy,
    };
    req.validate()?;
    Ok(req)
}

pub fn run(mut args: Args) -> anyhow::Result<()> {
    let clip = args.from_clip.as_deref().map(read_clip).transpose()?;
    let (model_spec, req) = match &clip {
        // The clip's own settings through the same constructor the plugin's worker uses, so
        // the request is the one the clip was made with.
        Some(c) => {
            args.quant = c.settings.params.quant;
            (args.model.clone().unwrap_or_else(|| c.model.clone()), c.settings.request(c.seconds)?)
        }
        None => (args.model.clone().expect("clap requires --model unless --from-clip"), request_from_args(&args)?),
    };
    let max_new_tokens = req.max_new_tokens;
    eprintln!("seed: {}", req.seed);

    let dir = resolve_model(&model_spec)?;
    let dtype = match args.dtype {
        DtypeArg::F32 => DType::F32,
        DtypeArg::F16 => DType::F16,
        DtypeArg::Bf16 => DType::BF16,
    };
    let dev = device(args.device)?;
    let load_start = Instant::now();
    let model = MusicGen::load_with(&dir, &dev, &LoadOptions { dtype, quant: args.quant, ..Default::default() })
        .with_context(|| format!("cannot load the model in {}", dir.display()))?;
    let load_s = load_start.elapsed().as_secs_f64();
    let report = model.quant_report();
    if args.quant != Quant::F32 {
        eprintln!("{report}");
    }

    let recorded = clip.as_ref().and_then(|c| c.melody.as_ref());
    let chroma = match (&args.melody, recorded) {
        (_, Some(_)) if !model.is_melody() => {
            eprintln!("note: {} takes no melody: the clip's recorded melody is not used", dir.display());
            None
        }
        (_, Some(record)) => Some(record.one_hot().map_err(|e| anyhow::anyhow!("the clip's recorded melody: {e}"))?),
        (Some(path), None) => {
            if !model.is_melody() {
                bail!("--melody needs a MusicGen-Melody model; {} is a text-only model", dir.display());
            }
            let c = melody_from_file(path).with_context(|| format!("cannot compute the chroma of {}", path.display()))?;
            Some(c.one_hot().to_vec())
        }
        (None, None) => None,
    };

    let bar = ProgressBar::new(max_new_tokens as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // The phases of `MusicGen::generate`, run one by one so each can be timed.
    let gen_start = Instant::now();
    let mut step_ends = Vec::with_capacity(max_new_tokens);
    let ids = model.tokenize(&req.text)?;
    let mut state = model.start(&[ids], &[chroma.as_deref()], max_new_tokens, req.sampling(), req.seed, req.guidance)?;
    let encoded = gen_start.elapsed().as_secs_f64();
    // Streaming: the frames completed by each step are decoded before the next one, so the
    // first audio is there after ~20 steps instead of at the end.
    let mut stream = if args.no_stream { None } else { Some(StreamingDecoder::new(&model, StreamConfig::default())?) };
    let mut streamed = vec![Vec::new(); model.channels()];
    let mut take = |audio: &Audio| {
        for (all, new) in streamed.iter_mut().zip(&audio.channels) {
            all.extend_from_slice(new);
        }
    };
    let mut first_audio_s = None;
    let mut stream_decode_s = 0.0;
    while !state.is_done() {
        let p = state.step()?;
        step_ends.push(gen_start.elapsed().as_secs_f64());
        bar.set_position(p.step as u64);
        if let Some(dec) = stream.as_mut() {
            let t = Instant::now();
            if let Some(chunk) = dec.catch_up(&state, 0)? {
                take(&chunk.audio);
                first_audio_s.get_or_insert(gen_start.elapsed().as_secs_f64());
            }
            stream_decode_s += t.elapsed().as_secs_f64();
        }
    }
    bar.finish_and_clear();
    let codes = state.codes().pop().expect("batch of one");
    let decode_start = gen_start.elapsed().as_secs_f64();
    let audio = match stream.as_mut() {
        Some(dec) => {
            take(&dec.finish()?.audio);
            Audio { sample_rate: model.sample_rate(), channels: streamed }
        }
        None => model.decode(&codes)?,
    };
    let total = gen_start.elapsed().as_secs_f64();
    let first_audio_s = first_audio_s.unwrap_or(total);
    let out = Generated { audio, codes };
    if let Some(path) = &args.timings_json {
        let timings = json!({
            "load_s": load_s,
            "quant": format!("{:#}", args.quant),
            "quant_layers": {"f32": report.f32_layers, "q8_0": report.q8_0_layers, "q4k": report.q4k_layers},
            "quant_fallbacks": report.fallbacks.len(),
            "decoder_linear_bytes": report.weight_bytes,
            "encode_s": encoded,
            "steps": step_ends.len(),
            "step_end_s": step_ends,
            "streamed": !args.no_stream,
            "first_audio_s": first_audio_s,
            "stream_decode_s": stream_decode_s,
            "decode_s": total - decode_start,
            "total_s": total,
            "audio_s": out.audio.frames() as f64 / out.audio.sample_rate as f64,
        });
        std::fs::write(path, serde_json::to_string_pretty(&timings)?).with_context(|| format!("cannot write {}", path.display()))?;
    }

    wav::write_f32(&args.out, &out.audio)?;
    eprintln!(
        "wrote {} ({} channel(s), {} Hz, {:.2} s)",
        args.out.display(),
        out.audio.channels.len(),
        out.audio.sample_rate,
        out.audio.frames() as f64 / out.audio.sample_rate as f64
    );
    if let Some(path) = &args.codes_out {
        let json = serde_json::json!({ "codes": out.codes });
        std::fs::write(path, serde_json::to_string(&json)?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
