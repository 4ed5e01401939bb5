"""The generation pipeline in pedalboard (VST3), one step per child process (see hostrun.py).

Each step plays a DAW: it sets the prompt and settings through the plugin's state, feeds a
melody, raises "Generate" through the parameter (as automation would; no editor is open), keeps
processing until the clip is ready and checks what comes out. The plugin reads the model from
MELODYGEN_MODEL (the tests point it at a tiny checkpoint) and writes clips to MELODYGEN_CLIP_DIR.

What the steps observe comes from the plugin's ordinary saved state (`raw_state`): the `clips`
field (paths and metadata) and the read-only `diagnostics` field (model loads, job outcomes,
progress).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from pedalboard import load_plugin

import juce_state

BLOCK = 512
JOB_TIMEOUT_S = 240.0
CLIP_SECONDS = 1.0

def read_state(plugin) -> dict:
    return juce_state.plugin_state(bytes(plugin.raw_state))


def write_state(plugin, state: dict) -> None:
    plugin.raw_state = juce_state.with_plugin_state(bytes(plugin.raw_state), state)


def field(state: dict, name: str):
    return json.loads(state["fields"][name])


def diagnostics(plugin) -> dict:
    return field(read_state(plugin), "diagnostics")


def clips(plugin) -> list:
    return field(read_state(plugin), "clips")


def configured(vst3: str, prompt: str, settings: dict):
    plugin = load_plugin(vst3)
    state = read_state(plugin)
    merged = field(state, "settings")
    merged.update(settings)
    state["fields"]["settings"] = json.dumps(merged)
    # pedalboard reports a transport that is never playing, so "follow transport" would capture
    # and preview nothing: capture manually (armed from the start) and preview at once, as a
    # user of such a host would.
    state["params"]["capture_mode"] = {"i32": 1}  # Manual
    state["params"]["capture_armed"] = {"bool": True}
    state["params"]["preview"] = {"i32": 1}  # Play now
    write_state(plugin, juce_state.with_prompt(state, prompt))
    return plugin


def settings(seed: int, seconds: float = CLIP_SECONDS, **extra) -> dict:
    # The preview while generating is off: these tests compare the finished clip, heard from its
    # first sample without a gap, with its file, and an offline host renders far faster than
    # the engine decodes, so a growing preview would pause (plugin/src/dispatch/partial_preview.rs
    # tests that preview).
    return {"length": {"seconds": seconds}, "seed": seed, "seed_locked": True, "melody_source": "audio",
            "preview_while_generating": False, **extra}


def melody(rate: int) -> np.ndarray:
    notes = [261.63, 329.63, 392.0, 523.25]
    per = rate // 2
    t = np.arange(per * len(notes))
    freq = np.repeat(notes, per)
    mono = (0.3 * np.sin(2 * np.pi * freq * t / rate)).astype(np.float32)
    return np.stack([mono, mono])


def process(plugin, audio: np.ndarray, rate: int) -> np.ndarray:
    return plugin.process(audio, float(rate), buffer_size=BLOCK, reset=False)


def press(plugin, name: str, rate: int) -> None:
    """A momentary press of a trigger parameter (normalised 1 for one block, then 0), as a
    host's automation would send it."""
    param = plugin.parameters[name]
    param.raw_value = 1.0
    process(plugin, np.zeros((2, BLOCK), np.float32), rate)
    param.raw_value = 0.0


def ended(d: dict) -> bool:
    return d["jobs_finished"] + d["jobs_failed"] + d["jobs_cancelled"] > 0


def process_until(plugins: list, rate: int, done, chunk: int = BLOCK * 8) -> tuple[list, list]:
    start = time.monotonic()
    outs = [[] for _ in plugins]
    while True:
        for plugin, out in zip(plugins, outs):
            out.append(process(plugin, np.zeros((2, chunk), np.float32), rate))
        diags = [diagnostics(p) for p in plugins]
        if done(diags):
            return [np.concatenate(o, axis=1) for o in outs], diags
        assert time.monotonic() - start < JOB_TIMEOUT_S, f"no result after {JOB_TIMEOUT_S} s: {diags}"


def check_heard(output: np.ndarray, clip: np.ndarray, what: str) -> dict:
    """Input is silent while we wait, so from the first non-zero sample on the output must be the
    clip itself (clip level 0 dB)."""
    nonzero = np.flatnonzero(np.any(output != 0.0, axis=0))
    assert nonzero.size, f"{what}: the clip is never heard (output stayed silent)"
    first = int(nonzero[0])
    n = min(clip.shape[1], output.shape[1] - first)
    assert n >= clip.shape[1] // 2, f"{what}: only {n} of {clip.shape[1]} clip frames rendered"
    worst = float(np.max(np.abs(output[:, first : first + n] - clip[:, :n])))
    assert worst < 1e-6, f"{what}: output differs from the clip file by up to {worst}"
    return {"first_frame": first, "frames_compared": n, "max_error": worst}


def _generate_and_wait(plugin, rate: int):
    process(plugin, melody(rate), rate)
    press(plugin, "generate", rate)
    return process_until([plugin], rate, lambda d: ended(d[0]))


def generate(vst3: str, sample_rate: int) -> dict:
    plugin = configured(vst3, "a test melody", settings(7))
    t = time.monotonic()
    (out,), (d,) = _generate_and_wait(plugin, sample_rate)
    assert d["jobs_finished"] == 1, f"the job did not finish: {d}"
    elapsed = time.monotonic() - t
    (meta,) = clips(plugin)
    path = Path(meta["path"])
    assert path.with_suffix(".json").exists(), f"no sidecar next to {path}"
    assert meta["settings"]["prompt"] == "a test melody" and meta["settings"]["seed"] == 7, meta
    audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.T
    assert file_rate == sample_rate, f"clip at {file_rate} Hz, host at {sample_rate}"
    assert audio.shape[0] == 2 and meta["frames"] == audio.shape[1] and meta["sample_rate"] == file_rate, meta
    seconds = audio.shape[1] / sample_rate
    assert abs(seconds - CLIP_SECONDS) <= 0.02 + 1 / 32000, f"clip lasts {seconds} s"
    more = process(plugin, np.zeros((2, audio.shape[1] + BLOCK), np.float32), sample_rate)
    heard = check_heard(np.concatenate([out, more], axis=1), audio, f"{sample_rate} Hz")
    return {"seconds_to_clip": elapsed, "clip_frames": int(audio.shape[1]), **heard}


def four_instances(vst3: str) -> dict:
    rate = 48000
    plugins = [configured(vst3, f"instance {i}", settings(i)) for i in range(4)]
    for p in plugins:
        process(p, melody(rate), rate)
    for p in plugins:
        press(p, "generate", rate)
    _, diags = process_until(plugins, rate, lambda ds: all(ended(d) for d in ds))
    for i, d in enumerate(diags):
        assert d["jobs_finished"] == 1, f"instance {i}: {d}"
        assert d["model_loads"] == 1, f"instance {i}: the process loaded {d['model_loads']} models, expected 1"
    for i, p in enumerate(plugins):
        (meta,) = clips(p)
        assert meta["settings"]["prompt"] == f"instance {i}", meta
    return {"model_loads": diags[0]["model_loads"]}


def _start_long_job(plugin, rate: int) -> None:
    process(plugin, melody(rate), rate)
    press(plugin, "generate", rate)
    _, (d,) = process_until(
        [plugin], rate, lambda d: (d[0]["stage"] == "Generating" and d[0]["step"] > 0) or ended(d[0]), chunk=BLOCK
    )
    assert not ended(d), f"the long job ended before it could be interrupted: {d}"


def cancel(vst3: str) -> dict:
    rate = 48000
    plugin = configured(vst3, "cancel me", settings(1, seconds=30.0))
    _start_long_job(plugin, rate)
    t = time.monotonic()
    press(plugin, "cancel", rate)
    _, (d,) = process_until([plugin], rate, lambda d: ended(d[0]), chunk=BLOCK)
    elapsed = time.monotonic() - t
    assert d["jobs_cancelled"] == 1 and d["jobs_finished"] == 0, d
    assert elapsed < 10, f"cancelling took {elapsed} s"
    assert clips(plugin) == [], "a cancelled job left a clip"
    return {"cancel_seconds": elapsed}


def remove(vst3: str) -> dict:
    rate = 48000
    doomed = configured(vst3, "removed mid-job", settings(1, seconds=30.0))
    _start_long_job(doomed, rate)
    t = time.monotonic()
    del doomed
    import gc

    gc.collect()
    elapsed = time.monotonic() - t
    assert elapsed < 5, f"removing the instance stalled for {elapsed} s"
    nxt = configured(vst3, "after removal", settings(3))
    _, (d,) = _generate_and_wait(nxt, rate)
    assert d["jobs_finished"] == 1, d
    return {"remove_seconds": elapsed}


def rate_change(vst3: str) -> dict:
    plugin = configured(vst3, "rate change", settings(5, seconds=10.0))
    _start_long_job(plugin, 44100)
    (out,), (d,) = process_until([plugin], 48000, lambda d: ended(d[0]))
    assert d["jobs_finished"] == 1, d
    (meta,) = clips(plugin)
    audio, file_rate = sf.read(meta["path"], dtype="float32", always_2d=True)
    assert file_rate == 48000, f"clip saved at {file_rate} Hz after the host moved to 48000"
    more = process(plugin, np.zeros((2, audio.shape[0] + BLOCK), np.float32), 48000)
    return check_heard(np.concatenate([out, more], axis=1), audio.T, "after 44100 -> 48000")


def corrupt_model(vst3: str) -> dict:
    good = Path(os.environ["MELODYGEN_MODEL"])
    bad = Path(os.environ["MELODYGEN_CLIP_DIR"]).parent / f"corrupt-model-{os.getpid()}"
    shutil.copytree(good, bad, dirs_exist_ok=True)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    plugin = configured(vst3, "corrupt", settings(1, model=str(bad)))
    rate = 48000
    _, (d,) = _generate_and_wait(plugin, rate)
    message = d["last_error"]
    assert d["jobs_failed"] == 1, d
    assert "could not load model" in message and str(bad) in message, message
    x = melody(rate)
    y = process(plugin, x, rate)
    assert np.array_equal(x, y), "after the error the plugin no longer passes audio through"
    shutil.rmtree(bad)
    return {"message": message}


def reopen(vst3: str) -> dict:
    rate = 48000
    first = configured(vst3, "reopen me", settings(11))
    _generate_and_wait(first, rate)
    saved = bytes(first.raw_state)
    (meta,) = clips(first)
    del first
    second = load_plugin(vst3)
    second.raw_state = saved
    audio, _ = sf.read(meta["path"], dtype="float32", always_2d=True)
    # The clip is reopened off the audio thread once processing starts: keep processing until
    # it is heard, then long enough to hear all of it.
    outs, start = [], time.monotonic()
    while not any(np.any(o) for o in outs):
        assert time.monotonic() - start < 30, "the reopened clip was never heard"
        outs.append(process(second, np.zeros((2, BLOCK * 8), np.float32), rate))
    outs.append(process(second, np.zeros((2, audio.shape[0]), np.float32), rate))
    heard = check_heard(np.concatenate(outs, axis=1), audio.T, "reopened session")
    d = diagnostics(second)
    assert d["jobs_finished"] == 0, f"the reopened session generated again: {d}"
    path = Path(meta["path"])
    moved = path.with_suffix(".moved")
    path.rename(moved)
    try:
        third = load_plugin(vst3)
        third.raw_state = saved
        out, (d,) = process_until([third], rate, lambda d: d[0]["clips_missing"] == 1)
        assert not np.any(out), "a missing clip still played something"
    finally:
        moved.rename(path)
    return heard
