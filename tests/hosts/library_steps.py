"""Host steps for the clip library test (test_library.py), each run in its own child process by
hostrun: pedalboard (VST3) under Xvfb, the tiny melody checkpoint, the editor driven with
xdotool where its MELODYGEN_UI_RECTS test hook (ui_rects.py) says the widgets are.

A new child process loading a saved `raw_state` into a fresh plugin is what a DAW does when a
project is closed and opened again (a new host session).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from pedalboard import load_plugin

import editor_steps
import juce_state
import pipeline_steps
import ui_rects

RATE = 48000


def _row_shown(found: dict, key: str, shot: str, title: str) -> ui_rects.Editor:
    """Waits for the editor and its newest library row, screenshots, and records where the row's
    widgets are (window-relative points) under `key`."""
    editor = ui_rects.Editor.find(title, 30)
    editor_steps._wait("the library row", lambda: "library_name_0" in editor_steps._rects_now(), 15)
    time.sleep(1.0)
    editor_steps._shot(shot)
    found[key] = {"origin": editor.origin, "size": editor.size, "rects": editor_steps._rects_now(), "shot": shot}
    return editor


def _choose_from_row_menu(editor: ui_rects.Editor, item: str) -> None:
    """Opens the first library row's menu once the row is there and clicks `item` in it."""
    editor_steps._wait("the library row", lambda: "library_menu_0" in editor_steps._rects_now(), 15)
    editor.click("library_menu_0")
    editor_steps._wait("the row's menu", lambda: item in editor_steps._rects_now(), 5)
    time.sleep(0.3)
    editor.click(item)


def _type_into(editor: ui_rects.Editor, open_field, focused: str, text: str, done, what: str, attempts: int = 3) -> int:
    """Opens a text field (`open_field()`: a click or double-click) until the editor reports it
    focused as `focused`, gives the editor's X window the keyboard focus (as
    ui_rects.Editor.focus_and_type does), selects what is there, types `text` and presses Enter;
    repeats the whole when `done()` does not come true within 3 s (a keystroke lost by the X
    server under load). Returns the attempts it took."""
    for attempt in range(1, attempts + 1):
        open_field()
        try:
            editor_steps._wait(f"the {what} field focused", lambda: focused in editor_steps._rects_now(), 3)
        except RuntimeError:
            continue
        ui_rects.run_x("xdotool", "windowfocus", "--sync", editor.window)
        time.sleep(0.2)
        ui_rects.run_x("xdotool", "key", "ctrl+a")
        ui_rects.run_x("xdotool", "type", "--delay", "30", text)
        ui_rects.run_x("xdotool", "key", "Return")
        try:
            editor_steps._wait(what, done, 3)
            return attempt
        except RuntimeError:
            pass
    raise RuntimeError(f"typing into the {what} field had no effect after {attempts} attempts")


def _state(plugin) -> dict:
    state = pipeline_steps.read_state(plugin)
    return {"clips": pipeline_steps.field(state, "clips"), "diagnostics": pipeline_steps.field(state, "diagnostics")}


def generate_and_reopen(vst3: str, saved_state: str, shots: list[str], title: str = "MelodyGen") -> dict:
    """Session 1: a clip made by the "Generate" parameter (no editor open), then the editor
    opened, closed and opened again; the project state is saved to `saved_state`."""
    ui_rects.use_rects_file()
    # f32 weights: this test is about the library, not the quantized path.
    plugin = pipeline_steps.configured(vst3, "library test: dusty jazz drums", pipeline_steps.settings(4242, quant="f32"))
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

        def double_click() -> None:
            ui_rects.run_x("xdotool", "mousemove", str(x), str(y))
            time.sleep(0.2)
            ui_rects.run_x("xdotool", "click", "--repeat", "2", "--delay", "80", "1")

        renamed = old.with_name(new_name + ".wav")
        started = time.monotonic()
        try:
            f["rename_attempts"] = _type_into(editor, double_click, "library_rename_focused", new_name, renamed.exists, "rename")
        except RuntimeError:
            editor_steps._shot(shots[1])  # what the editor says instead
            raise
        f["rename_seconds"] = time.monotonic() - started
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
        _choose_from_row_menu(editor, "library_menu_delete")
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


def settings_again_and_folder(vst3: str, saved_state: str, new_folder: str, title: str = "MelodyGen") -> dict:
    """Session 5: the project's prompt and seed are changed, the melody is fed again; in the
    editor, "Use these settings again" (row menu) and a new clip folder (typed, Enter). Then
    "Generate" (the parameter, editor closed) must remake the clip in the new folder."""
    ui_rects.use_rects_file()
    plugin = load_plugin(vst3)
    plugin.raw_state = Path(saved_state).read_bytes()
    state = pipeline_steps.read_state(plugin)
    settings = pipeline_steps.field(state, "settings")
    settings.update(seed=1, seed_locked=False)
    state["fields"]["settings"] = json.dumps(settings)
    pipeline_steps.write_state(plugin, juce_state.with_prompt(state, "something else entirely"))
    # Another melody than session 1's (its notes in reverse order), captured from the first
    # block (capture is armed): only the melody recalled from the clip can remake the clip.
    pipeline_steps.process(plugin, pipeline_steps.melody(RATE)[:, ::-1].copy(), RATE)
    found: dict = {"changed": pipeline_steps.field(pipeline_steps.read_state(plugin), "settings")}

    def drive(f: dict) -> None:
        editor = ui_rects.Editor.find(title, 30)
        _choose_from_row_menu(editor, "library_menu_settings")
        # The melody view says the clip's melody is recalled and offers the live capture back.
        editor_steps._wait("the recalled melody", lambda: "melody_use_live" in editor_steps._rects_now(), 5)
        f["recalled_shown"] = True
        time.sleep(0.5)
        f["folder_attempts"] = _type_into(
            editor, lambda: editor.click("library_folder"), "library_folder_focused", new_folder, Path(new_folder).is_dir, "clip folder"
        )
        time.sleep(0.5)

    found["editor"] = editor_steps._run_editor(plugin, drive)
    state = pipeline_steps.read_state(plugin)
    found["prompt"] = pipeline_steps.field(state, "prompt")
    found["settings"] = pipeline_steps.field(state, "settings")
    found["clip_dir"] = pipeline_steps.field(state, "clip_dir")
    found["recalled_melody"] = pipeline_steps.field(state, "recalled_melody")
    pipeline_steps.press(plugin, "generate", RATE)
    pipeline_steps.process_until([plugin], RATE, lambda d: pipeline_steps.ended(d[0]))
    found["clips"] = pipeline_steps.clips(plugin)
    found["diagnostics"] = pipeline_steps.diagnostics(plugin)
    if len(found["clips"]) == 2:
        import soundfile

        old, new = (soundfile.read(c["path"], dtype="float32", always_2d=True)[0] for c in found["clips"])
        found["remake_error"] = _err(old, new)
    return found
