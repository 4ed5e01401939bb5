"""Host step for the editor generation test (test_editor_generate.py), run in a child process by
hostrun: a producer's session in pedalboard (VST3) under Xvfb, driven with the mouse and the
keyboard through xdotool.

The plugin gets a melody (manual capture, armed), then its editor opens. A helper thread waits
for the captured melody's picture, takes the "before" screenshot, clicks the prompt field, types
the prompt, clicks Generate, waits for the clip's files, lets the editor repaint and takes the
"after" screenshot. The editor is then closed and opened again ("reopened" screenshot), as a
user closing and reopening the plugin window would. Where the widgets are comes from the
editor's MELODYGEN_UI_RECTS test hook (ui_rects.py), not from pixel guesses.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

import juce_state
import pipeline_steps
import ui_rects

RATE = 48000
CLIP_WAIT_S = 120.0


def _shot(path: str) -> None:
    # The pointer is parked outside the editor first, so no hover highlight differs between shots.
    ui_rects.run_x("xdotool", "mousemove", "1270", "790")
    time.sleep(0.5)
    subprocess.run(["import", "-window", "root", path], check=True, timeout=30)


def _sidecars(clip_dir: Path) -> list[Path]:
    return sorted(clip_dir.glob("*.json")) if clip_dir.exists() else []


def _wait(what: str, done, timeout: float) -> float:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def _rects_now() -> dict:
    doc = ui_rects.read()
    return doc["rects"] if doc else {}


def _run_editor(plugin, drive) -> dict:
    """Opens the editor (pedalboard's show_editor blocks this thread) while `drive(found)` runs
    on a helper thread; the editor closes when `drive` returns or fails."""
    close = threading.Event()
    found: dict = {}

    def run() -> None:
        try:
            drive(found)
        except Exception as e:  # reported to the test, which fails on it
            found["error"] = repr(e)
        finally:
            close.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    plugin.show_editor(close)
    thread.join(timeout=10)
    return found


def generate_from_editor(
    vst3: str, prompt: str, before: str, empty_prompt: str, after: str, reopened: str, title: str = "MelodyGen"
) -> dict:
    ui_rects.use_rects_file()
    clip_dir = Path(os.environ["MELODYGEN_CLIP_DIR"])
    plugin = pipeline_steps.configured(vst3, "", pipeline_steps.settings(7))
    # Processing activates the plugin (its dispatcher starts) and captures the melody.
    pipeline_steps.process(plugin, pipeline_steps.melody(RATE), RATE)

    def first(found: dict) -> None:
        editor = ui_rects.Editor.find(title, 30)
        found["editor"] = {"origin": editor.origin, "size": editor.size}
        # The captured melody is drawn once the dispatcher has made its preview.
        found["melody_seconds"] = _wait("the melody picture", lambda: "melody_chroma" in _rects_now(), 20)
        time.sleep(0.5)
        _shot(before)
        found["rects_before"] = _rects_now()
        # Generate with no prompt yet: the window says what to do, in the error colour.
        editor.click("generate")
        _wait("the message line", lambda: "message" in _rects_now(), 10)
        time.sleep(0.3)
        _shot(empty_prompt)
        found["message_rect"] = _rects_now()["message"]
        # A click gives the text field egui's focus (reported through the hook); the editor's X
        # window gets the keyboard focus and the keys are typed (XTEST).
        found["prompt_clicks"] = editor.focus_and_type("prompt", prompt)
        time.sleep(0.5)
        editor.click("generate")
        clicked = time.monotonic()
        try:
            found["clip_seconds"] = _wait("the clip's sidecar", lambda: _sidecars(clip_dir), CLIP_WAIT_S)
        except RuntimeError:
            _shot(after)  # what the window said instead
            raise
        _wait("the clip's row in the library", lambda: "drag_handle_0" in _rects_now(), 10)
        found["click_to_row_seconds"] = time.monotonic() - clicked
        time.sleep(1.0)
        _shot(after)
        found["rects_after"] = _rects_now()

    found = _run_editor(plugin, first)
    if "error" in found:
        return found
    state = pipeline_steps.read_state(plugin)
    found["state_prompt"] = pipeline_steps.field(state, "prompt")
    found["state_clips"] = pipeline_steps.field(state, "clips")
    found["diagnostics"] = pipeline_steps.field(state, "diagnostics")
    found["sidecars"] = [str(p) for p in _sidecars(clip_dir)]

    def second(found_again: dict) -> None:
        ui_rects.use_rects_file()
        editor = ui_rects.Editor.find(title, 30)
        found_again["origin"] = editor.origin
        _wait("the reopened library row", lambda: "drag_handle_0" in _rects_now(), 10)
        _wait("the reopened melody picture", lambda: "melody_chroma" in _rects_now(), 10)
        time.sleep(1.0)
        _shot(reopened)
        found_again["rects"] = _rects_now()
        # Ctrl+Enter in the prompt generates again (a second clip).
        editor.focus_and_type("prompt", "")
        ui_rects.run_x("xdotool", "key", "ctrl+Return")
        found_again["second_clip_seconds"] = _wait("a second clip", lambda: len(_sidecars(clip_dir)) == 2, 20)
        # pedalboard reports 120 BPM: the length can be switched to bars (1 s -> 1 bar = 2 s).
        editor.click("length_bars")
        time.sleep(0.3)
        # "Stop capture" sets the Capture Armed parameter through the host.
        editor.click("capture")
        time.sleep(0.5)

    found["reopened"] = _run_editor(plugin, second)
    # The audio thread still passes the track through after all this.
    x = pipeline_steps.melody(RATE)[:, :4096]
    found["processes_after"] = bool(np.all(np.isfinite(pipeline_steps.process(plugin, x, RATE))))
    state = pipeline_steps.read_state(plugin)
    found["prompts_after_ctrl_enter"] = [c["settings"]["prompt"] for c in pipeline_steps.field(state, "clips")]
    found["length_after_bars_click"] = pipeline_steps.field(state, "settings")["length"]
    # Parameter changes made in the editor reach the plugin at its next process() call.
    found["armed_after_stop_click"] = juce_state.param(pipeline_steps.read_state(plugin), "capture_armed")
    return found


def cancel_from_editor(vst3: str, shots: list[str], done: str, title: str = "MelodyGen") -> dict:
    """A long take (30 s) started with the Generate button and stopped with Cancel; screenshots
    while it runs (the progress bar moving) and after."""
    ui_rects.use_rects_file()
    clip_dir = Path(os.environ["MELODYGEN_CLIP_DIR"])
    plugin = pipeline_steps.configured(vst3, "cancel me from the window", pipeline_steps.settings(3, seconds=30.0))
    pipeline_steps.process(plugin, pipeline_steps.melody(RATE), RATE)

    def drive(found: dict) -> None:
        editor = ui_rects.Editor.find(title, 30)
        found["origin"], found["size"] = editor.origin, editor.size
        _wait("the editor's widgets", lambda: "generate" in _rects_now(), 10)
        found["rects"] = _rects_now()
        editor.click("generate")
        # The tiny checkpoint makes a 30 s take in a second or two: be quick.
        time.sleep(0.15)
        for shot in shots:
            subprocess.run(["import", "-window", "root", shot], check=True, timeout=30)
            time.sleep(0.1)
        x, y = editor.centre("cancel")
        ui_rects.run_x("xdotool", "mousemove", str(x), str(y), "click", "1")
        time.sleep(1.0)
        _shot(done)
        found["clips_on_disk"] = len(_sidecars(clip_dir))

    found = _run_editor(plugin, drive)
    pipeline_steps.process(plugin, np.zeros((2, 512), np.float32), RATE)
    found["diagnostics"] = pipeline_steps.diagnostics(plugin)
    found["clips"] = pipeline_steps.clips(plugin)
    return found
