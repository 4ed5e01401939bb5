"""Finding the editor's widgets on screen, for GUI tests that click and drag with xdotool.

The editor writes where it drew a few named widgets ("prompt", "generate", "cancel",
"library", "drag_handle_0" for the newest clip, ...) to the JSON file named by the
MELODYGEN_UI_RECTS environment variable (plugin/src/editor/ui_rects.rs):

    {"pixels_per_point": 1.0, "window": [w, h], "rects": {"generate": [x0, y0, x1, y1], ...}}

in egui points relative to the editor's own X window. `use_rects_file()` sets the variable
(before the plugin is loaded in this process) and `Editor.find()` pairs the file with the X
window of that size, so tests click what the editor really shows instead of guessing from
pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ENV = "MELODYGEN_UI_RECTS"


def run_x(*args: str) -> str:
    """Runs an X tool (xdotool, xwininfo, ...) and returns its output, stripped; the one helper
    every host-test step module uses for them."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20).stdout.strip()


def use_rects_file() -> Path:
    """Points the editor of plugins loaded later in this process at a fresh rects file."""
    if not os.environ.get(ENV):
        os.environ[ENV] = str(Path(tempfile.mkdtemp(prefix="melodygen-ui-")) / "rects.json")
    path = Path(os.environ[ENV])
    path.unlink(missing_ok=True)
    return path


def read(path: Path | None = None) -> dict | None:
    path = path or Path(os.environ[ENV])
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Editor:
    """The editor's X window (origin in screen pixels) and the rects it reports."""

    def __init__(self, origin: tuple[int, int], size: tuple[int, int], path: Path, window: str = ""):
        self.origin, self.size, self.path, self.window = origin, size, path, window

    @classmethod
    def find(cls, title: str = "MelodyGen", timeout: float = 30) -> "Editor":
        path = Path(os.environ[ENV])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = read(path)
            if doc:
                scale = doc["pixels_per_point"]
                want = tuple(round(v * scale) for v in doc["window"])
                for wid in run_x("xdotool", "search", "--onlyvisible", "--name", title).split():
                    shell = run_x("xdotool", "getwindowgeometry", "--shell", wid)
                    g = dict(line.split("=", 1) for line in shell.splitlines() if "=" in line)
                    if (int(g["WIDTH"]), int(g["HEIGHT"])) == want:
                        return cls((int(g["X"]), int(g["Y"])), want, path, wid)
            time.sleep(0.2)
        raise RuntimeError(f"no editor window named {title!r} matching {read(path)} appeared")

    def rect(self, name: str, timeout: float = 10) -> tuple[int, int, int, int]:
        """Screen pixel rectangle (x0, y0, x1, y1) of the widget `name`, waiting for it to be drawn."""
        deadline = time.monotonic() + timeout
        while True:
            doc = read(self.path)
            if doc and name in doc["rects"]:
                s = doc["pixels_per_point"]
                x0, y0, x1, y1 = doc["rects"][name]
                ox, oy = self.origin
                return (ox + round(x0 * s), oy + round(y0 * s), ox + round(x1 * s), oy + round(y1 * s))
            if time.monotonic() > deadline:
                raise RuntimeError(f"the editor reports no widget {name!r}: {doc}")
            time.sleep(0.1)

    def centre(self, name: str, timeout: float = 10) -> tuple[int, int]:
        x0, y0, x1, y1 = self.rect(name, timeout)
        return (x0 + x1) // 2, (y0 + y1) // 2

    def window_rect(self, name: str, timeout: float = 10) -> tuple[int, int, int, int]:
        """Like rect(), relative to the editor window (for cropping a window screenshot)."""
        x0, y0, x1, y1 = self.rect(name, timeout)
        ox, oy = self.origin
        return x0 - ox, y0 - oy, x1 - ox, y1 - oy

    def focus_and_type(self, field: str, text: str, attempts: int = 5) -> int:
        """Clicks the text field `field` until the editor reports it focused (as
        "<field>_focused"), gives the editor's X window the keyboard focus and types `text`.
        Returns the number of clicks it took."""
        for attempt in range(1, attempts + 1):
            self.click(field)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                doc = read(self.path)
                if doc and f"{field}_focused" in doc["rects"]:
                    run_x("xdotool", "windowfocus", "--sync", self.window)
                    time.sleep(0.2)
                    if text:
                        run_x("xdotool", "type", "--delay", "40", text)
                    return attempt
                time.sleep(0.1)
        raise RuntimeError(f"the editor never reported {field!r} focused after {attempts} clicks")

    def click(self, name: str, timeout: float = 10) -> tuple[int, int]:
        x, y = self.centre(name, timeout)
        run_x("xdotool", "mousemove", str(x), str(y))
        time.sleep(0.15)
        run_x("xdotool", "click", "1")
        return x, y
