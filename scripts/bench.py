#!/usr/bin/env python3
"""Speed benchmark: our Candle engine against Hugging Face transformers, same weights, same machine.

Why: producers compare us with running MusicGen in Python, so we measure exactly that, side by
side, on random-weight checkpoints at the real sizes (no real weights can be downloaded here;
speed and memory do not depend on the weight values). Run by hand, never in CI.

What one invocation does:
  1. Builds (once; cached) random-weight checkpoints at real sizes in target/bench-models/ with
     transformers' own config and model classes: musicgen-small (decoder 1024 x 24 layers,
     16 heads, ffn 4096) and, with --melody, musicgen-melody (1536 x 48, 24 heads, ffn 6144;
     ~1.5 B parameters, ~6 GB in f32, so opt-in). Both get a t5-base-sized text encoder
     (vocab 32128) and the real EnCodec 32 kHz. No real T5 tokenizer can be downloaded here, so the
     tokenizer is the tiny word-level one of scripts/make_tiny_checkpoints.py (its ids are a subset
     of the 32128 embedding rows): the text encoder runs once per generation and its cost is
     negligible next to the decoder loop either way. Never commit these files.
  2. Measures this machine's streaming read bandwidth: torch .sum() over a 2 GiB f32 tensor with
     the default (all-core) thread count, 15 runs before and 15 after the systems run, in a child
     process; the best run sets the roofline (the median is printed too).
  3. Runs, one after the other, each in its own child process so peak RSS is per system
     (os.wait4 rusage; plus peak RssAnon polled from /proc): our CLI (target/release/melodygen generate ... --timings-json) and
     transformers' generate (do_sample=True, guidance_scale=3, top_k=250), same prompt, same
     number of decoder steps, CFG on, f32 on CPU. With --repeat N the two systems run
     alternately N times and each one's fastest run is reported (least disturbed by other load).
  3b. Also runs our CLI with the decoder quantized (`--quant q8_0`, `--quant q4k`; choose with
     --quants, "" for none), alternating with the f32 runs, and prints each one's ratio to our f32.
  3c. Quality of each quantized format against our f32, same prompt, CFG on, greedy, same number
     of steps: (a) free-running greedy codes: the fraction of identical codes overall and the
     frames before the first frame that differs; (b) teacher forcing (hidden `melodygen logits`:
     every model is fed f32's greedy codes, so each step sees the same context): max and mean
     absolute logit error, relative RMS error, and the fraction of steps whose arg-max agrees.
     Random weights give flat logits (close calls between tokens everywhere), so (a) and the
     arg-max agreement are pessimistic next to a trained model; the logit errors are not.
  4. Prints per system: steady-state decoder steps/s (steps 2..N; step 1 also runs the text
     encoder / prefill), real-time factor (audio seconds / generation wall time, model loading
     excluded), time to first audio, peak RSS, model load time, and ours/transformers ratios;
     then the bandwidth roofline (decoder weight bytes read per step / bandwidth) and our share,
     for f32 and for each quantized format (its own bytes per step).

Environment (CPU only is fine):
    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/refvenv/bin/pip install "transformers==5.23.*" tokenizers safetensors numpy
Run from the repository root (or via `cargo xtask bench [ARGS]`, which builds the CLI first):
    cargo build --release -p melodygen-cli --bin melodygen
    /tmp/refvenv/bin/python scripts/bench.py                  # musicgen-small, 24 steps each
    /tmp/refvenv/bin/python scripts/bench.py --max-new-tokens 153   # 3 s of audio
    /tmp/refvenv/bin/python scripts/bench.py --melody         # also musicgen-melody (large)
    /tmp/refvenv/bin/python scripts/bench.py --skip-transformers   # ours only (quick)
    /tmp/refvenv/bin/python scripts/bench.py --repeat 3       # fastest of 3 alternating runs each
    /tmp/refvenv/bin/python scripts/bench.py --quants ""      # f32 only (no quantized rows)
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "target" / "bench-models"
CLI = ROOT / "target" / "release" / "melodygen"
PROMPT = "90s rock song with loud guitars and heavy drums"
GUIDANCE = 3.0
TOP_K = 250
SEED = 1

# Real decoder sizes (transformers' MusicgenDecoderConfig / MusicgenMelodyDecoderConfig fields).
SIZES = {
    "musicgen-small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096, melody=False),
    "musicgen-melody": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144, melody=True),
}


# ----------------------------------------------------------------------------- checkpoints


def build_checkpoint(name: str) -> Path:
    """Creates target/bench-models/<name>-random unless it already exists (a `.complete` marker)."""
    out = MODELS / f"{name}-random"
    if (out / ".complete").exists():
        return out
    import torch
    from transformers import (
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
        T5Config,
    )

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_tiny_checkpoints as tiny  # tokenizer, EnCodec topology, generation config

    size = dict(SIZES[name])
    melody = size.pop("melody")
    print(f"building {out.relative_to(ROOT)} (random weights, real sizes; once)", flush=True)
    torch.manual_seed(0)
    t5 = T5Config(
        vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0,
        layer_norm_epsilon=1e-6, feed_forward_proj="relu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    encodec = tiny.encodec_config()
    encodec.hidden_size = 128  # facebook/encodec_32khz widths
    encodec.codebook_dim = 128
    encodec.num_filters = 64
    dec = tiny.decoder_kwargs(num_codebooks=4, audio_channels=1)
    dec.update(size)
    if melody:
        cfg = MusicgenMelodyConfig(
            text_encoder=t5.to_dict(), audio_encoder=encodec.to_dict(),
            decoder=MusicgenMelodyDecoderConfig(**dec).to_dict(), num_chroma=12, chroma_length=235,
        )
        model = MusicgenMelodyForConditionalGeneration(cfg)
    else:
        cfg = MusicgenConfig(
            text_encoder=t5.to_dict(), audio_encoder=encodec.to_dict(), decoder=MusicgenDecoderConfig(**dec).to_dict()
        )
        model = MusicgenForConditionalGeneration(cfg)
    with torch.no_grad():  # transformers leaves EnCodec codebooks at zero: give them values
        for n, b in model.named_buffers():
            if n.startswith("audio_encoder.quantizer") and n.endswith("codebook.embed"):
                b.copy_(torch.randn(b.shape))
    model.eval()
    tiny.set_generation_config(model)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, max_shard_size="2GB")
    tiny.build_tokenizer().save(str(out / "tokenizer.json"))
    if melody:
        (out / "preprocessor_config.json").write_text(json.dumps(tiny.PREPROCESSOR, indent=2) + "\n")
    (out / ".complete").write_text("ok\n")
    return out


def tensor_shapes(model_dir: Path) -> dict[str, tuple[str, list[int]]]:
    """name -> (dtype, shape) from the safetensors headers (no tensor is read)."""
    shapes = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                shapes[k] = (v["dtype"], v["shape"])
    return shapes


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def decoder_params(model_dir: Path) -> tuple[int, int, int]:
    """(all decoder parameters, parameters one decoder step reads, all parameters in the file).

    Per step a decoder reads every layer weight and the LM heads, but only K rows of the token
    embeddings, and not the cross-attention K/V projections (the encoder's K/V are computed once
    per generation and cached, by us and by transformers alike).
    """
    shapes = tensor_shapes(model_dir)
    total = sum(numel(s) for _, s in shapes.values())
    dec = {k: numel(s) for k, (_, s) in shapes.items() if k.startswith("decoder.")}
    all_dec = sum(dec.values())
    per_step = sum(
        n for k, n in dec.items()
        if ".embed_tokens." not in k and not ("encoder_attn.k_proj" in k or "encoder_attn.v_proj" in k)
    )
    return all_dec, per_step, total


# ----------------------------------------------------------------------------- children


def child_bandwidth() -> dict:
    """Streaming read bandwidth: torch .sum() over a 2 GiB f32 tensor (larger than a step's weight
    reads and than the last-level cache), all cores, 15 runs. Run before and after the systems;
    on a shared machine the best run is the closest to what the hardware allows."""
    import torch

    n = (2 << 30) // 4
    a = torch.ones(n, dtype=torch.float32)
    a.sum()
    times = []
    for _ in range(15):
        t = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t)
    times.sort()
    return {
        "read_gb_s": n * 4 / times[0] / 1e9,
        "times": times,
        "threads": torch.get_num_threads(),
    }


def child_transformers(model_dir: str, steps: int) -> dict:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, LogitsProcessor, LogitsProcessorList
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    t0 = time.perf_counter()
    cls = (
        MusicgenMelodyForConditionalGeneration
        if AutoConfig.from_pretrained(model_dir).model_type == "musicgen_melody"
        else MusicgenForConditionalGeneration
    )
    model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    ids = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json")).encode(PROMPT).ids
    input_ids = torch.tensor([ids])
    mask = torch.ones_like(input_ids)

    stamps: list[float] = []

    class Stamp(LogitsProcessor):
        """Called once per decoder step, right after the forward pass: a per-step clock."""

        def __call__(self, input_ids, scores):
            stamps.append(time.perf_counter())
            return scores

    torch.manual_seed(SEED)
    start = time.perf_counter()
    with torch.inference_mode():
        audio = model.generate(
            input_ids=input_ids, attention_mask=mask, do_sample=True, guidance_scale=GUIDANCE, top_k=TOP_K,
            max_new_tokens=steps, logits_processor=LogitsProcessorList([Stamp()]),
        )
    end = time.perf_counter()
    return {
        "load_s": load_s,
        "steps": len(stamps),
        "step_end_s": [s - start for s in stamps],
        "decode_s": end - stamps[-1],
        "total_s": end - start,
        "audio_s": audio.shape[-1] / model.config.audio_encoder.sampling_rate,
        "threads": torch.get_num_threads(),
    }


def run_child(argv: list[str], json_path: Path) -> tuple[dict, float, float]:
    """Runs a child; returns (its JSON, peak RSS in GB, peak anonymous RSS in GB).

    Peak RSS is the kernel's high-water mark (os.wait4 rusage). It also counts the pages of
    memory-mapped weight files that were touched while loading (clean page cache, which the
    kernel can drop at will), so the peak of RssAnon (private memory: the weights actually held,
    activations, caches), polled from /proc every 50 ms, is reported beside it."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    anon_kb = 0
    status_file = Path(f"/proc/{p.pid}/status")
    while True:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    anon_kb = max(anon_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)  # this child's own rusage once it exits
        if pid == p.pid:
            break
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}")
    # ru_maxrss is in KiB on Linux.
    return json.loads(json_path.read_text()), usage.ru_maxrss * 1024 / 1e9, anon_kb * 1024 / 1e9


# ----------------------------------------------------------------------------- report


def summarise(t: dict, rss_gb: float, anon_gb: float) -> dict:
    ends = t["step_end_s"]
    # Ours decodes audio between steps while streaming (`stream_decode_s`, nearly all of it inside
    # steps 2..N); the decoder's own rate leaves that work out, so f32 and the quantized formats
    # (whose steps are shorter, so the decode weighs more) are compared on the decoder alone.
    window = ends[-1] - ends[1] - t.get("stream_decode_s", 0.0) if len(ends) > 2 else float("nan")
    steady = (len(ends) - 2) / window if len(ends) > 2 else float("nan")
    # Time to first audio: ours streams (EnCodec decodes the frames that are complete between
    # decoder steps) and reports when its first chunk existed (`first_audio_s`; with --no-stream
    # that is the end, and older builds lack it: the end). transformers' generate returns the
    # whole clip at once, so its first audio is its end. Our EnCodec time is the decode work
    # between steps (`stream_decode_s`) plus the tail after the last step.
    return {
        "steps": t["steps"],
        "first_step_s": ends[0],
        "steps_per_s": steady,
        "rtf": t["audio_s"] / t["total_s"],
        "first_audio_s": t.get("first_audio_s", t["total_s"]),
        "total_s": t["total_s"],
        "decode_s": t["decode_s"] + t.get("stream_decode_s", 0.0),
        "load_s": t["load_s"],
        "rss_gb": rss_gb,
        "anon_gb": anon_gb,
        "audio_s": t["audio_s"],
        "quant": t.get("quant", "f32"),
        "linear_bytes": t.get("decoder_linear_bytes"),
        "fallbacks": t.get("quant_fallbacks", 0),
    }


def print_table(rows: dict[str, dict], ratios: list[tuple[str, str]]) -> None:
    """One column per system, then one column per (numerator, denominator) ratio pair."""
    fields = [
        ("decoder steps/s (steady, steps 2..N)", "steps_per_s", "{:.2f}"),
        ("first step incl. text encoder (s)", "first_step_s", "{:.2f}"),
        ("real-time factor (audio s / gen s)", "rtf", "{:.3f}"),
        ("time to first audio (s)", "first_audio_s", "{:.1f}"),
        ("EnCodec decode (s)", "decode_s", "{:.2f}"),
        ("generation total (s)", "total_s", "{:.1f}"),
        ("model load (s)", "load_s", "{:.1f}"),
        ("peak RSS (GB)", "rss_gb", "{:.2f}"),
        ("peak private RSS, RssAnon (GB)", "anon_gb", "{:.2f}"),
    ]
    names = list(rows)
    ratios = [(a, b) for a, b in ratios if a in rows and b in rows]
    head = f"{'':40}" + "".join(f"{n:>14}" for n in names) + "".join(f"{a + ' / ' + b:>26}" for a, b in ratios)
    print(head)
    print("-" * len(head))
    for label, key, fmt in fields:
        line = f"{label:40}" + "".join(f"{fmt.format(rows[n][key]):>14}" for n in names)
        for a, b in ratios:
            x, y = rows[a][key], rows[b][key]
            line += f"{(x / y if y else float('nan')):>25.2f}x"
        print(line)


def ours_cmd(model_dir: Path, steps: int, quant: str, out: Path, extra: list[str]) -> list[str]:
    return [str(CLI), "generate", "--model", str(model_dir), "--prompt", PROMPT, "--max-new-tokens", str(steps),
            "--guidance", str(GUIDANCE), "--seed", str(SEED), "--quant", quant, "--out", str(out)] + extra


def quality(model_dir: Path, steps: int, quants: list[str], tmp: Path) -> dict[str, dict]:
    """Quantized vs our f32 on the same prompt, greedy with CFG, `steps` steps (see 3c above)."""
    import numpy as np

    codes, logits = {}, {}
    for q in ["f32"] + quants:
        path = tmp / f"greedy-{q}.json"
        subprocess.run(ours_cmd(model_dir, steps, q, tmp / "greedy.wav", ["--greedy", "--codes-out", str(path)]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        codes[q] = np.array(json.loads(path.read_text())["codes"])
    for q in ["f32"] + quants:
        out = tmp / f"logits-{q}.npy"
        subprocess.run([str(CLI), "logits", "--model", str(model_dir), "--prompt", PROMPT, "--max-new-tokens", str(steps),
                        "--guidance", str(GUIDANCE), "--quant", q, "--codes", str(tmp / "greedy-f32.json"),
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        logits[q] = np.load(out)
    ref, ref_codes = logits["f32"], codes["f32"]
    res = {}
    for q in quants:
        same = codes[q] == ref_codes  # (K, F)
        frames = same.shape[1]
        diverged = ~same.all(axis=0)
        first = int(np.argmax(diverged)) if diverged.any() else frames
        err = np.abs(logits[q] - ref)
        res[q] = {
            "codes_equal": float(same.mean()),
            "frames_before_divergence": first,
            "frames": frames,
            "logit_max_abs": float(err.max()),
            "logit_mean_abs": float(err.mean()),
            "logit_rel_rms": float(np.sqrt(((logits[q] - ref) ** 2).mean() / (ref ** 2).mean())),
            "forced_argmax_equal": float((logits[q].argmax(-1) == ref.argmax(-1)).mean()),
            "logit_std": float(ref.std()),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-new-tokens", type=int, default=24, help="decoder steps per system (50 = 1 s; frames = N - 3)")
    ap.add_argument("--melody", action="store_true", help="also benchmark musicgen-melody size (~6 GB f32; slow)")
    ap.add_argument("--skip-small", action="store_true", help="with --melody: only the melody size")
    ap.add_argument("--skip-transformers", action="store_true", help="ours only")
    ap.add_argument("--repeat", type=int, default=1, help="run each system N times (alternating), report each one's fastest run")
    ap.add_argument("--quants", default="q8_0,q4k", help="quantized formats to run besides f32 (comma-separated; \"\" = none)")
    ap.add_argument("--build-only", action="store_true", help="only create the checkpoints")
    ap.add_argument("--child", choices=["bandwidth", "transformers"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        res = child_bandwidth() if args.child == "bandwidth" else child_transformers(args.model_dir, args.max_new_tokens)
        Path(args.json_out).write_text(json.dumps(res))
        return

    names = ([] if args.skip_small else ["musicgen-small"]) + (["musicgen-melody"] if args.melody else [])
    dirs = {n: build_checkpoint(n) for n in names}
    if args.build_only:
        return
    if not CLI.exists():
        sys.exit(f"{CLI} is missing: cargo build --release -p melodygen-cli --bin melodygen")

    tmp = Path(tempfile.mkdtemp(prefix="melodygen-bench-"))
    me = [sys.executable, str(Path(__file__).resolve())]
    load_before = os.getloadavg()
    bw_runs = [run_child(me + ["--child", "bandwidth", "--json-out", str(tmp / "bw.json")], tmp / "bw.json")[0]]
    print(f"\nmachine: {os.cpu_count()} cores, {os.uname().machine}; load average before: "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    results = []

    for name in names:
        d = dirs[name]
        n = args.max_new_tokens
        print(f"\n=== {name} (random weights, real size), f32 CPU, CFG {GUIDANCE}, top-k {TOP_K}, sampling on, "
              f"{n} decoder steps each, prompt '{PROMPT}' ===", flush=True)
        quants = [q for q in args.quants.split(",") if q]
        systems = ["ours"] + [f"ours {q}" for q in quants]
        runs: dict[str, list[dict]] = {k: [] for k in systems + ["transformers"]}
        for r in range(args.repeat):
            for system in systems:
                q = system.split(" ")[1] if " " in system else "f32"
                ours, rss, anon = run_child(
                    ours_cmd(d, n, q, tmp / f"{name}.wav",
                             ["--top-k", str(TOP_K), "--timings-json", str(tmp / f"{name}-ours.json")]),
                    tmp / f"{name}-ours.json",
                )
                runs[system].append(summarise(ours, rss, anon))
                print(f"run {r + 1}/{args.repeat}: {system} {runs[system][-1]['steps_per_s']:.2f} steps/s", flush=True)
            if not args.skip_transformers:
                tf, rss, anon = run_child(
                    me + ["--child", "transformers", "--model-dir", str(d), "--max-new-tokens", str(n),
                          "--json-out", str(tmp / f"{name}-tf.json")],
                    tmp / f"{name}-tf.json",
                )
                runs["transformers"].append(summarise(tf, rss, anon))
                print(f"run {r + 1}/{args.repeat}: transformers ({tf['threads']} torch threads) "
                      f"{runs['transformers'][-1]['steps_per_s']:.2f} steps/s", flush=True)
        # Each system's fastest run (least disturbed by other load); the runs alternate.
        rows = {k: max(v, key=lambda x: x["steps_per_s"]) for k, v in runs.items() if v}
        print(f"\naudio per run: {rows['ours']['audio_s']:.2f} s ({n - 3} frames); transformers' time to first "
              f"audio is the end of its generation. Model load: ours copies every weight into memory (and "
              f"quantizes the decoder's matrices for q8_0/q4k); transformers maps them lazily, so its reads from "
              f"disk fall into its first step. 'ours' is f32.\n")
        print_table(rows, [("ours", "transformers")] + [(s, "ours") for s in systems[1:]])
        if quants:
            print(f"\nquality against our f32 (greedy, CFG {GUIDANCE}, {n} steps, same prompt; random weights: "
                  f"flat logits, so code agreement is pessimistic):")
            qual = quality(d, n, quants, tmp)
            for q, m in qual.items():
                print(f"  {q}: greedy codes equal {m['codes_equal']:.3f} overall, {m['frames_before_divergence']}/"
                      f"{m['frames']} frames before the first difference; teacher-forced logits: max abs error "
                      f"{m['logit_max_abs']:.3f}, mean abs {m['logit_mean_abs']:.4f} (f32 logit std "
                      f"{m['logit_std']:.3f}), relative RMS {m['logit_rel_rms']:.4f}, arg-max equal "
                      f"{m['forced_argmax_equal']:.3f}")
                rows[f"ours {q}"]["quality"] = m

        results.append((name, d, rows))

    bw_runs.append(run_child(me + ["--child", "bandwidth", "--json-out", str(tmp / "bw.json")], tmp / "bw.json")[0])
    times = sorted(t for b in bw_runs for t in b["times"])
    size = 2 << 30
    bw = {"read_gb_s": size / times[0] / 1e9, "median_gb_s": size / times[len(times) // 2] / 1e9}
    print(f"\nstreaming read bandwidth (torch sum over 2 GiB f32, {bw_runs[0]['threads']} threads, 15 runs before "
          f"and 15 after the systems): best {bw['read_gb_s']:.2f} GB/s, median {bw['median_gb_s']:.2f} GB/s")
    for name, d, rows in results:
        print(f"\n=== {name}: weights, roofline, memory ===")
        all_dec, per_step, total = decoder_params(d)
        step_bytes = per_step * 4
        roof = bw["read_gb_s"] * 1e9 / step_bytes
        roof_med = bw["median_gb_s"] * 1e9 / step_bytes
        print(f"weights: {total / 1e6:.0f} M parameters in the checkpoint ({total * 4 / 1e9:.2f} GB f32); "
              f"decoder {all_dec / 1e6:.0f} M, of which a step reads {per_step / 1e6:.0f} M "
              f"(no token-embedding tables, no cross-attention K/V projections)")
        print(f"roofline: {step_bytes / 1e9:.2f} GB read per step (both CFG rows share one read) / "
              f"{bw['read_gb_s']:.2f} GB/s (best) = {roof:.2f} steps/s max; "
              f"ours {rows['ours']['steps_per_s']:.2f} = {100 * rows['ours']['steps_per_s'] / roof:.0f}% of it "
              f"(with the median bandwidth: {roof_med:.2f} steps/s max, ours "
              f"{100 * rows['ours']['steps_per_s'] / roof_med:.0f}%)")
        gb = total * 4 / 1e9
        for key, what in [("rss_gb", "peak RSS"), ("anon_gb", "peak private RSS")]:
            print(f"{what} / checkpoint f32 bytes ({gb:.2f} GB): "
                  + ", ".join(f"{n} {r[key] / gb:.2f}x" for n, r in rows.items()))
        f32_linear = rows["ours"].get("linear_bytes")
        cross_kv = sum(numel(sh) for k, (_, sh) in tensor_shapes(d).items()
                       if k.startswith("decoder.") and ("encoder_attn.k_proj" in k or "encoder_attn.v_proj" in k))
        # We never load EnCodec's encoder (only its quantizer and decoder are needed).
        unused = sum(numel(sh) * 4 for k, (_, sh) in tensor_shapes(d).items() if k.startswith("audio_encoder.encoder."))
        loaded = total * 4 - unused
        print(f"ours f32: weights in use {loaded / 1e9:.2f} GB (the checkpoint without EnCodec's encoder); peak RSS "
              f"{rows['ours']['rss_gb'] / (loaded / 1e9):.2f}x, peak private RSS {rows['ours']['anon_gb'] / (loaded / 1e9):.2f}x of them")
        for sys_name, r in rows.items():
            if not sys_name.startswith("ours ") or not r.get("linear_bytes") or not f32_linear:
                continue
            # The weights a quantized model holds: those f32 loads minus the decoder's f32 matrices
            # plus their quantized blocks (embeddings, norms, T5 and EnCodec stay f32).
            in_use = (loaded - f32_linear + r["linear_bytes"]) / 1e9
            print(f"{sys_name}: decoder matrices {r['linear_bytes'] / 1e6:.0f} MB quantized ({r['fallbacks']} "
                  f"fallbacks), weights in use {in_use:.2f} GB; peak RSS {r['rss_gb']:.2f} GB = {r['rss_gb'] / in_use:.2f}x, "
                  f"peak private RSS {r['anon_gb'] / in_use:.2f}x of them; steps/s {r['steps_per_s'] / rows['ours']['steps_per_s']:.2f}x f32")
            # Its own roofline: the quantized matrices a step reads (all but the cross-attention
            # K/V projections, in the same share as in f32) plus the f32 rest of a step's reads.
            linear_params = f32_linear / 4
            step_linear = linear_params - cross_kv
            q_step = r["linear_bytes"] * step_linear / linear_params + (per_step - step_linear) * 4
            q_roof = bw["read_gb_s"] * 1e9 / q_step
            print(f"{sys_name}: roofline {q_step / 1e9:.2f} GB read per step / {bw['read_gb_s']:.2f} GB/s = {q_roof:.2f} "
                  f"steps/s max; ours {r['steps_per_s']:.2f} = {100 * r['steps_per_s'] / q_roof:.0f}% of it")
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
          f"(other work on this machine makes every figure noisier)")


if __name__ == "__main__":
    main()
