"""Host step for the editor drag test (test_editor_drag.py), run in a child process by hostrun.

The editor is opened in pedalboard (a JUCE VST3 host) with one clip in its saved state; a
helper thread finds the clip's "Drag" handle on screen (where the editor reports drawing it,
through the MELODYGEN_UI_RECTS test hook; see ui_rects.py) and drags it with xdotool to a point
(the GTK drop target's centre), like a user dragging the clip into a DAW's timeline.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

from pedalboard import load_plugin

import juce_state
import ui_rects


def editor_drag(vst3: str, wav: str, drop_at: list[int], screenshot: str, title: str = "MelodyGen") -> dict:
    ui_rects.use_rects_file()
    plugin = load_plugin(vst3)
    state = juce_state.plugin_state(plugin.raw_state)
    # A clip as the worker saves it (ClipMeta, engine/src/record/clip_meta.rs); omitted settings take defaults.
    meta = {
        "path": wav,
        "settings": {"prompt": "drag test"},
        "model_dir": None,
        "seconds": 0.25,
        "sample_rate": 48000,
        "frames": 12000,
        "model_rate": 32000,
        "anchor": {},
        "created": "2026-01-01T00:00:00Z",
    }
    state["fields"]["clips"] = json.dumps([meta])
    plugin.raw_state = juce_state.with_plugin_state(plugin.raw_state, state)

    close = threading.Event()
    found: dict = {}

    def drive() -> None:
        try:
            # The newest clip's handle, where the editor says it drew it (ui_rects.py).
            editor = ui_rects.Editor.find(title, 30)
            hx, hy = editor.centre("drag_handle_0", timeout=30)
            found["editor"], found["handle"] = editor.origin, (hx, hy)
            tx, ty = drop_at
            ui_rects.run_x("xdotool", "mousemove", str(hx), str(hy))
            time.sleep(0.2)
            ui_rects.run_x("xdotool", "mousedown", "1")
            time.sleep(0.2)
            steps = 30
            for i in range(1, steps + 1):
                ui_rects.run_x("xdotool", "mousemove", str(hx + (tx - hx) * i // steps), str(hy + (ty - hy) * i // steps))
                time.sleep(0.03)
            time.sleep(0.3)
            ui_rects.run_x("xdotool", "mouseup", "1")
            time.sleep(2.0)  # the editor shows the outcome under the clip list
            subprocess.run(["import", "-window", "root", screenshot], check=True, timeout=30)
            found["screenshot"] = screenshot
        except Exception as e:  # reported to the test, which fails on it
            found["error"] = repr(e)
        finally:
            close.set()

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    plugin.show_editor(close)
    driver.join(timeout=10)
    found["closed"] = True
    return found
