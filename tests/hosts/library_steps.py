"""Host steps for the clip library test (test_library.py), each run in its own child process by
hostrun: pedalboard (VST3) under Xvfb, the tiny melody checkpoint, the editor driven with
xdotool where its MELODYGEN_UI_RECTS test hook (ui_rects.py) says the widgets are.

A new child process loading a saved `raw_state` into a fresh plugin is what a DAW does when a
project is closed and opened again (a new host session).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
from pedalboard import load_plugin

import editor_steps
import pipeline_steps
import ui_rects

RATE = 48000


def _x(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20).stdout.strip()


def _row_shown(found: dict, key: str, shot: str, title: str) -> ui_rects.Editor:
    """Waits for the editor and its newest library row, screenshots, and records where the row's
    widgets are (window-relative points) under `key`."""
    editor = ui_rects.Editor.find(title, 30)
    editor_steps._wait("the library row", lambda: "library_name_0" in editor_steps._rects_now(), 15)
    time.sleep(1.0)
    editor_steps._shot(shot)
    found[key] = {"origin": editor.origin, "size": editor.size, "rects": editor_steps._rects_now(), "shot": shot}
    return editor


def _state(plugin) -> dict:
    state = pipeline_steps.read_state(plugin)
    return {"clips": pipeline_steps.field(state, "clips"), "diagnostics": pipeline_steps.field(state, "diagnostics")}


def generate_and_reopen(vst3: str, saved_state: str, shots: list[str], title: str = "MelodyGen") -> dict:
    """Session 1: a clip made by the "Generate" parameter (no editor open), then the editor
    opened, closed and opened again; the project state is saved to `saved_state`."""
    ui_rects.use_rects_file()
    plugin = pipeline_steps.configured(vst3, "library test: dusty jazz drums", pipeline_steps.settings(4242))
    pipeline_steps.process(plugin, pipeline_steps.melody(RATE), RATE)
    pipeline_steps.press(plugin, "generate", RATE)
    pipeline_steps.process_until([plugin], RATE, lambda d: pipeline_steps.ended(d[0]))
    found: dict = {"generated": _state(plugin)}
    for i, shot in enumerate(shots):
        ui_rects.use_rects_file()
        opened = editor_steps._run_editor(plugin, lambda f, shot=shot: _row_shown(f, "editor", shot, title))
        found[f"open_{i}"] = opened
        if "error" in opened:
            return found
    found["state"] = _state(plugin)
    Path(saved_state).write_bytes(bytes(plugin.raw_state))
    return found


def restore_and_rename(vst3: str, saved_state: str, new_name: str, shots: list[str], resaved_state: str, title: str = "MelodyGen") -> dict:
    """Session 2: the saved state in a fresh plugin; the library lists the clip; then the clip is
    renamed in the editor (double-click its name, type, Enter) and the state saved again."""
    ui_rects.use_rects_file()
    plugin = load_state(vst3, saved_state)
    found: dict = {"restored": _state(plugin)}

    def drive(f: dict) -> None:
        editor = _row_shown(f, "before", shots[0], title)
        old = Path(found["restored"]["clips"][0]["path"])
        # The editor's X window gets the keyboard focus first (egui drops its focused widget when
        # the window's focus changes), then the name is double-clicked until the editor reports
        # its rename field focused.
        x, y = editor.centre("library_name_0")
        for attempt in range(1, 6):
            _x("xdotool", "windowfocus", "--sync", editor.window)
            _x("xdotool", "mousemove", str(x), str(y))
            time.sleep(0.2)
            _x("xdotool", "click", "--repeat", "2", "--delay", "80", "1")
            try:
                editor_steps._wait("the rename field", lambda: "library_rename_focused" in editor_steps._rects_now(), 2)
                break
            except RuntimeError:
                if attempt == 5:
                    raise
        f["rename_clicks"] = attempt
        _x("xdotool", "key", "ctrl+a")
        _x("xdotool", "type", "--delay", "30", new_name)
        _x("xdotool", "key", "Return")
        renamed = old.with_name(new_name + ".wav")
        f["rename_seconds"] = editor_steps._wait(f"{renamed} on disk", renamed.exists, 10)
        time.sleep(1.0)
        editor_steps._shot(shots[1])
        f["after"] = {"rects": editor_steps._rects_now(), "shot": shots[1]}

    found["editor"] = editor_steps._run_editor(plugin, drive)
    found["state"] = _state(plugin)
    Path(resaved_state).write_bytes(bytes(plugin.raw_state))
    return found


def restore_delete_undo(vst3: str, saved_state: str, title: str = "MelodyGen") -> dict:
    """Session 3: the renamed clip is listed after another restore; Delete (from its row's menu)
    moves its files to the trash and removes the row, "Undo delete" brings both back."""
    ui_rects.use_rects_file()
    plugin = load_state(vst3, saved_state)
    found: dict = {"restored": _state(plugin)}
    wav = Path(found["restored"]["clips"][0]["path"])
    trash = wav.parent / "trash"

    def drive(f: dict) -> None:
        editor = ui_rects.Editor.find(title, 30)
        editor_steps._wait("the library row", lambda: "library_menu_0" in editor_steps._rects_now(), 15)
        editor.click("library_menu_0")
        editor_steps._wait("the row's menu", lambda: "library_menu_delete" in editor_steps._rects_now(), 5)
        time.sleep(0.3)
        editor.click("library_menu_delete")
        f["delete_seconds"] = editor_steps._wait("the clip in the trash", lambda: not wav.exists() and (trash / wav.name).exists(), 10)
        f["trash_after_delete"] = sorted(p.name for p in trash.iterdir())
        editor_steps._wait("the row to go", lambda: "library_name_0" not in editor_steps._rects_now(), 5)
        editor.click("library_undo", timeout=5)
        f["undo_seconds"] = editor_steps._wait("the clip restored", lambda: wav.exists() and wav.with_suffix(".json").exists(), 10)
        editor_steps._wait("the row to return", lambda: "library_name_0" in editor_steps._rects_now(), 5)
        f["trash_after_undo"] = sorted(p.name for p in trash.iterdir())

    found["editor"] = editor_steps._run_editor(plugin, drive)
    found["state"] = _state(plugin)
    # The audio thread still runs after all this.
    x = pipeline_steps.melody(RATE)[:, :4096]
    found["processes_after"] = bool(np.all(np.isfinite(pipeline_steps.process(plugin, x, RATE))))
    return found


def load_state(vst3: str, saved_state: str):
    """A fresh plugin given a saved project state, processed for a moment as a host would (which
    activates it: its dispatcher reopens the newest clip from its file)."""
    plugin = load_plugin(vst3)
    plugin.raw_state = Path(saved_state).read_bytes()
    pipeline_steps.process(plugin, np.zeros((2, RATE // 4), np.float32), RATE)
    return plugin


def _clip_audio(plugin) -> np.ndarray:
    import soundfile

    (meta,) = pipeline_steps.clips(plugin)
    audio, rate = soundfile.read(meta["path"], dtype="float32", always_2d=True)
    assert rate == RATE, rate
    return audio.T


def _render(plugin, seconds: float) -> np.ndarray:
    return pipeline_steps.process(plugin, np.zeros((2, int(seconds * RATE)), np.float32), RATE)


def _err(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)))


def audition_stop_play_seek_loop(vst3: str, saved_state: str, shots: list[str], title: str = "MelodyGen") -> dict:
    """Session 4: with Preview off (the reopened clip silent), the library row's Play auditions
    the clip; the clip view's Stop silences it, Play restarts it, a click in the middle of the
    waveform seeks there and Loop repeats it. The host renders from the helper thread while the
    editor is open, as a DAW's audio thread would; every render is compared with the WAV."""
    ui_rects.use_rects_file()
    plugin = load_plugin(vst3)
    plugin.raw_state = Path(saved_state).read_bytes()
    state = pipeline_steps.read_state(plugin)
    state["params"]["preview"] = {"i32": 0}  # Off
    state["params"]["loop"] = {"bool": False}
    pipeline_steps.write_state(plugin, state)
    clip = _clip_audio(plugin)
    n = clip.shape[1]
    found: dict = {"frames": n, "silent_before": float(np.max(np.abs(_render(plugin, 0.25))))}

    def drive(f: dict) -> None:
        editor = ui_rects.Editor.find(title, 30)
        editor_steps._wait("the library row", lambda: "library_play_0" in editor_steps._rects_now(), 15)
        time.sleep(0.5)
        editor_steps._shot(shots[0])
        f["play_rect"] = editor.rect("library_play_0")
        editor.click("library_play_0")
        time.sleep(0.5)  # the dispatcher loads the WAV and hands it over
        half = n // 2
        f["audition_error"] = _err(_render(plugin, half / RATE), clip[:, :half])
        time.sleep(0.5)
        editor_steps._shot(shots[1])  # the row's button now says Stop; the playhead is drawn

        editor.click("clip_stop")
        time.sleep(0.3)
        f["stopped_peak"] = float(np.max(np.abs(_render(plugin, 0.25))))

        editor.click("clip_play")
        time.sleep(0.3)
        quarter = n // 4
        f["replay_error"] = _err(_render(plugin, quarter / RATE), clip[:, :quarter])

        editor.click("clip_waveform")  # its centre: about half way
        time.sleep(0.3)
        out = _render(plugin, quarter / RATE)
        starts = [k for k in range(n - quarter) if np.array_equal(out, clip[:, k : k + quarter])]
        f["seek_starts"] = starts[:3]
        k = starts[0] if starts else 0

        editor.click("clip_loop")
        time.sleep(0.3)
        out = _render(plugin, 1.0)
        expected = clip[:, (k + quarter + np.arange(out.shape[1])) % n]
        f["loop_error"] = _err(out, expected)

    found["editor"] = editor_steps._run_editor(plugin, drive)
    state = pipeline_steps.read_state(plugin)
    found["loop_param"] = state["params"]["loop"]
    return found
