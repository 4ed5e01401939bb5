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


def _focus_pointer_window() -> None:
    pointer = dict(line.split("=", 1) for line in _x("xdotool", "getmouselocation", "--shell").splitlines() if "=" in line)
    _x("xdotool", "windowfocus", pointer["WINDOW"])
    time.sleep(0.2)


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
        x, y = editor.centre("library_name_0")
        _x("xdotool", "mousemove", str(x), str(y))
        time.sleep(0.2)
        # Keyboard focus to the editor's own X window first: egui drops its focused widget
        # when the window's focus changes, so focusing after the double-click would lose it.
        _focus_pointer_window()
        _x("xdotool", "click", "--repeat", "2", "--delay", "80", "1")
        time.sleep(0.5)
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
