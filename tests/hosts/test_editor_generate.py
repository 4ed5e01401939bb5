"""A producer's round trip through the real editor: pedalboard (VST3, the allocation-checking
bundle) under Xvfb, the tiny melody checkpoint, mouse and keyboard driven by xdotool.

The test first presses Generate with no prompt (the window must say so in the error colour), then
types a prompt into the editor's prompt field, presses Generate and waits for the clip,
with screenshots before and after (target/test-artifacts/editor-generate-{before,after}.png and
the editor window alone in editor-generate-window.png). It checks that the clip's sidecar and
the plugin state carry the typed prompt, that the library region shows a new row where the clip
is listed, that a closed and reopened editor shows the same library and melody picture, and
that Ctrl+Enter in the prompt generates, that the length switches to bars at the host's tempo,
and that the Capture button reaches the host as the "Capture Armed" parameter.
"""

from __future__ import annotations

from pathlib import Path

import json
import numpy as np
import pytest
from PIL import Image

from hostrun import run_step

HOST = "pedalboard (VST3) editor"
TINY_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-musicgen-melody"
PROMPT = "warm lo-fi piano, 80 bpm"


@pytest.fixture
def session_env(tmp_path, xdisplay):
    assert (TINY_MODEL / "config.json").exists(), f"tiny checkpoint missing at {TINY_MODEL}"
    return {**xdisplay, "MELODYGEN_MODEL": str(TINY_MODEL), "MELODYGEN_CLIP_DIR": str(tmp_path / "clips")}


def _window(path: Path, origin, size) -> np.ndarray:
    (x, y), (w, h) = origin, size
    image = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    return image[y : y + h, x : x + w]


def _crop(window: np.ndarray, rect) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in rect)
    return window[y0:y1, x0:x1]


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ by more than a faint anti-aliasing shade."""
    return float(np.mean(np.any(np.abs(a - b) > 24, axis=-1)))


def test_typed_prompt_generate_and_library_row(vst3_bundle, session_env, artifacts):
    shots = {name: artifacts / f"editor-generate-{name}.png" for name in ("before", "empty_prompt", "after", "reopened")}
    for shot in shots.values():
        shot.unlink(missing_ok=True)
    r = run_step(
        HOST,
        "type a prompt, press Generate, wait for the clip, reopen the editor",
        "editor_steps.generate_from_editor",
        env=session_env,
        timeout=360,
        vst3=str(vst3_bundle),
        prompt=PROMPT,
        **{name: str(path) for name, path in shots.items()},
    )
    print({k: v for k, v in r.items() if not k.startswith("rects")})
    assert "error" not in r, r["error"]

    # The typed prompt reached the project, the clip list and the clip's sidecar.
    assert r["state_prompt"] == PROMPT, f"the prompt field holds {r['state_prompt']!r}"
    assert len(r["state_clips"]) == 1, r["state_clips"]
    (meta,) = r["state_clips"]
    assert meta["settings"]["prompt"] == PROMPT, meta
    (sidecar,) = r["sidecars"]
    assert json.loads(Path(sidecar).read_text())["settings"]["prompt"] == PROMPT
    assert Path(meta["path"]).exists() and Path(meta["path"]).with_suffix(".json") == Path(sidecar)
    assert r["diagnostics"]["jobs_finished"] == 1 and r["diagnostics"]["jobs_failed"] == 0, r["diagnostics"]
    assert r["processes_after"]

    # Generate with an empty prompt first: a message in red (egui's error colour) said so and
    # no job ran (one finished job, none failed, above).
    origin, size = r["editor"]["origin"], r["editor"]["size"]
    message = _crop(_window(shots["empty_prompt"], origin, size), r["message_rect"])
    red = int(np.sum((message[..., 0] > 200) & (message[..., 1] < 90) & (message[..., 2] < 90)))
    print(f"empty-prompt message: {red} red pixels")
    assert red > 50, f"no error-coloured message after Generate with an empty prompt ({red} red pixels)"

    # The library shows a new row: where the newest clip's row (its drag handle) is drawn now,
    # the "before" screenshot had only the empty library.
    before = _window(shots["before"], origin, size)
    after = _window(shots["after"], origin, size)
    Image.fromarray(after.astype(np.uint8)).save(artifacts / "editor-generate-window.png")
    rects = r["rects_after"]
    assert "drag_handle_0" not in r["rects_before"], "the library was not empty before Generate"
    library = rects["library"]
    handle = rects["drag_handle_0"]
    assert library[1] <= handle[1] and handle[3] <= library[3], f"the new row {handle} lies outside the library {library}"
    row = [library[0], handle[1], library[2], handle[3]]
    row_changed = _changed(_crop(before, row), _crop(after, row))
    # The prompt field shows the typed text.
    prompt_changed = _changed(_crop(before, rects["prompt"]), _crop(after, rects["prompt"]))
    print(f"library row: {row_changed:.1%} of pixels changed; prompt field: {prompt_changed:.1%}")
    assert row_changed > 0.02, f"the library row region barely changed ({row_changed:.2%})"
    assert prompt_changed > 0.01, f"the prompt field looks unchanged ({prompt_changed:.2%})"

    # Reopened, the editor shows the same library row and melody picture.
    again = r["reopened"]
    assert "error" not in again, again["error"]
    # Ctrl+Enter in the prompt made a second clip with the same prompt (no newline typed in).
    assert r["prompts_after_ctrl_enter"] == [PROMPT, PROMPT], r["prompts_after_ctrl_enter"]
    # With the host's tempo (pedalboard: 120 BPM, 4/4) the length switched to bars: 1 s -> 1 bar.
    assert r["length_after_bars_click"] == {"bars": 1.0}, r["length_after_bars_click"]
    # Its "Stop capture" button switched the Capture Armed parameter off (armed before).
    assert r["armed_after_stop_click"] == 0.0, r["armed_after_stop_click"]
    assert again["rects"]["drag_handle_0"] == handle
    reopened = _window(shots["reopened"], again["origin"], size)
    for name, rect in (("library row", row), ("melody picture", rects["melody_chroma"])):
        diff = _changed(_crop(after, rect), _crop(reopened, rect))
        print(f"reopened {name}: {diff:.2%} of pixels differ")
        assert diff < 0.01, f"the reopened editor's {name} differs ({diff:.2%})"


def test_progress_moves_and_cancel_stops_the_take(vst3_bundle, session_env, artifacts):
    """Generate, then Cancel, pressed in the window during a 30 s take: the progress bar moves
    between two screenshots taken while the worker runs (the window keeps repainting), the job
    ends cancelled and leaves no clip."""
    shots = [artifacts / f"editor-cancel-running-{i}.png" for i in range(2)]
    done = artifacts / "editor-cancel-done.png"
    r = run_step(
        HOST,
        "press Generate, then Cancel",
        "editor_steps.cancel_from_editor",
        env=session_env,
        timeout=180,
        vst3=str(vst3_bundle),
        shots=[str(s) for s in shots],
        done=str(done),
    )
    print({k: v for k, v in r.items() if k != "rects"})
    assert "error" not in r, r["error"]
    d = r["diagnostics"]
    assert d["jobs_cancelled"] == 1 and d["jobs_finished"] == 0 and d["jobs_failed"] == 0, d
    assert r["clips"] == [] and r["clips_on_disk"] == 0, "a cancelled take left a clip"
    origin, size, rects = r["origin"], r["size"], r["rects"]
    running = [_window(s, origin, size) for s in shots]
    after = _window(done, origin, size)
    moved = _changed(_crop(running[0], rects["progress"]), _crop(running[1], rects["progress"]))
    print(f"progress bar: {moved:.1%} of its pixels changed between two screenshots while generating")
    assert moved > 0.005, "the progress bar did not move while the take was being generated"
    # Cancel is enabled only while a job runs: its look differs between running and done.
    cancel_look = _changed(_crop(running[1], rects["cancel"]), _crop(after, rects["cancel"]))
    assert cancel_look > 0.02, f"the Cancel button looks the same running and idle ({cancel_look:.2%})"
