"""Steps run inside pedalboard (Spotify's JUCE-based VST3 host), one per child process.

Each function loads the plugin itself, does one thing a DAW would do and returns plain data for
the test to judge (see hostrun.py for why this runs in a child process).
"""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
from pedalboard import Pedalboard, load_plugin

import juce_state
import ui_rects

# pedalboard's Python names of the plugin's parameters (display name, lower-cased, units added).
DRY = "dry_level_db"
CLIP = "clip_level_db"
GENERATE = "generate"
# The level parameters are smoothed over 20 ms so automation never clicks; levels are judged
# after this many seconds.
SETTLE_SECONDS = 0.1


def noise(frames: int, seed: int) -> np.ndarray:
    """Stereo white noise in [-0.5, 0.5), different on each channel, reproducible."""
    rng = np.random.default_rng(seed)
    return (rng.random((2, frames), dtype=np.float32) - 0.5).astype(np.float32)


def fit_gain(x: np.ndarray, y: np.ndarray, skip: int) -> dict:
    """Least-squares gain from x to y after `skip` frames, and the worst residual relative to
    the input peak (0 when y is exactly a scaled x)."""
    xs, ys = x[:, skip:].astype(np.float64), y[:, skip:].astype(np.float64)
    gain = float(np.sum(xs * ys) / np.sum(xs * xs))
    residual = float(np.max(np.abs(ys - gain * xs)) / np.max(np.abs(xs)))
    return {"gain": gain, "gain_db": 20 * np.log10(gain) if gain > 0 else -np.inf, "residual": residual}


def describe(vst3: str) -> dict:
    plugin = load_plugin(vst3)
    return {
        "name": plugin.name,
        "is_effect": plugin.is_effect,
        "is_instrument": plugin.is_instrument,
        "latency": plugin.reported_latency_samples,
        "parameters": {
            key: {"name": p.name, "raw_value": p.raw_value, "shown": str(getattr(plugin, key))}
            for key, p in plugin.parameters.items()
        },
    }


def passthrough(vst3: str, sample_rate: int, block: int) -> dict:
    plugin = load_plugin(vst3)
    x = noise(int(sample_rate * 1.5), seed=block)
    y = plugin.process(x, sample_rate, buffer_size=block, reset=True)
    n = min(x.shape[1], y.shape[1])
    differing = int(np.count_nonzero(x[:, :n].view(np.uint32) != y[:, :n].view(np.uint32)))
    return {"frames_in": x.shape[1], "frames_out": int(y.shape[1]), "channels_out": int(y.shape[0]), "differing": differing}


def set_parameter(vst3: str, name: str, value, sample_rate: int = 48000) -> dict:
    """Sets one parameter the way a user script would (attribute), processes a second of noise
    and reports the level change and what the plugin now reports and saves."""
    plugin = load_plugin(vst3)
    setattr(plugin, name, value)
    x = noise(sample_rate, seed=3)
    y = plugin.process(x, sample_rate, buffer_size=512, reset=False)
    state = juce_state.plugin_state(plugin.raw_state)
    return {
        "shown": str(getattr(plugin, name)),
        "raw_value": plugin.parameters[name].raw_value,
        "fit": fit_gain(x, y, int(SETTLE_SECONDS * sample_rate)),
        "stored": {k: juce_state.param(state, k) for k in state["params"]},
    }


def state_round_trip(vst3: str, prompt: str, dry_db: float) -> dict:
    """Instance A gets a level and a prompt; its raw_state goes into a fresh instance B."""
    first = load_plugin(vst3)
    setattr(first, DRY, dry_db)
    first.process(noise(4800, 1), 48000, buffer_size=512, reset=False)
    state = juce_state.plugin_state(first.raw_state)
    empty_prompt = juce_state.prompt(state)
    # A host never sees the prompt; it only stores the state. Put the prompt where a session
    # file would carry it and hand that state to the plugin.
    first.raw_state = juce_state.with_plugin_state(first.raw_state, juce_state.with_prompt(state, prompt))
    saved = first.raw_state

    second = load_plugin(vst3)
    second.raw_state = saved
    restored = juce_state.plugin_state(second.raw_state)
    x = noise(48000, 5)
    y = second.process(x, 48000, buffer_size=512, reset=True)
    return {
        "empty_prompt": empty_prompt,
        "first_prompt": juce_state.prompt(juce_state.plugin_state(saved)),
        "restored_prompt": juce_state.prompt(restored),
        "restored_dry_shown": str(getattr(second, DRY)),
        "fit": fit_gain(x, y, 0),
        "state_bytes": len(saved),
    }


def four_instances(vst3: str, levels_db: list[float]) -> dict:
    """Several instances in one process: each with its own level and prompt, then chained."""
    plugins = [load_plugin(vst3) for _ in levels_db]
    for i, (plugin, db) in enumerate(zip(plugins, levels_db)):
        # Prompt first: loading a state sets every parameter, and a parameter set from Python
        # only reaches the plugin at the next process() call.
        state = juce_state.plugin_state(plugin.raw_state)
        plugin.raw_state = juce_state.with_plugin_state(plugin.raw_state, juce_state.with_prompt(state, f"instance {i}"))
        setattr(plugin, DRY, db)
    x = noise(48000, 9)
    settle = int(SETTLE_SECONDS * 48000)
    single = [fit_gain(x, p.process(x, 48000, buffer_size=256, reset=False), settle) for p in plugins]
    chained = fit_gain(x, Pedalboard(plugins).process(x, 48000, buffer_size=256, reset=False), settle)
    prompts = [juce_state.prompt(juce_state.plugin_state(p.raw_state)) for p in plugins]
    stored = [juce_state.param(juce_state.plugin_state(p.raw_state), "dry_level") for p in plugins]
    return {"single": single, "chained": chained, "prompts": prompts, "stored_gains": stored}


def editor_screenshot(vst3: str, screenshot: str, title: str = "MelodyGen", settle_seconds: float = 3.0) -> dict:
    """Opens the editor (pedalboard's show_editor blocks this thread), and from a helper thread
    waits for the window, lets egui draw, takes a screenshot of the whole screen and closes the
    editor. Runs under the Xvfb display given in $DISPLAY."""
    plugin = load_plugin(vst3)
    close = threading.Event()
    found: dict = {}

    def watch() -> None:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not found.get("windows"):
                ids = ui_rects.run_x("xdotool", "search", "--onlyvisible", "--name", title).split()
                if ids:
                    found["windows"] = ids
                time.sleep(0.2)
            if found.get("windows"):
                time.sleep(settle_seconds)
                geometry = {}
                for wid in found["windows"]:
                    shell = ui_rects.run_x("xdotool", "getwindowgeometry", "--shell", wid)
                    geometry[wid] = dict(line.split("=", 1) for line in shell.splitlines() if "=" in line)
                    geometry[wid]["name"] = ui_rects.run_x("xdotool", "getwindowname", wid)
                found["geometry"] = geometry
                subprocess.run(["import", "-window", "root", screenshot], check=True, timeout=30)
                found["screenshot"] = screenshot
        except Exception as e:  # reported to the test, which fails on it
            found["error"] = repr(e)
        finally:
            close.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    opened = time.monotonic()
    plugin.show_editor(close)
    found["open_seconds"] = time.monotonic() - opened
    watcher.join(timeout=10)
    found["closed"] = True
    found["still_visible_after_close"] = ui_rects.run_x("xdotool", "search", "--onlyvisible", "--name", title).split()
    return found
