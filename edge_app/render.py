"""Drawing: the class overlay, the legend of classes present, top-k labels and the timing text.

Pure functions from (frame, result, model info) to a new BGR image; nothing here touches a
window, a file or the clock.
"""

from pathlib import Path

import cv2
import numpy as np

from edge_app.postprocess import Classification

MODES = ("overlay", "side-by-side", "mask", "blur", "replace")  # replace is given as replace=IMAGE
BACKGROUND_MODES = ("blur", "replace")  # the background changed, the foreground (not class 0) untouched
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT = (255, 255, 255)
PANEL = (32, 32, 32)
LEGEND_ITEMS = 6


def colour_table(info):
    """1 x 256 x 3 BGR lookup table for ``cv2.LUT``: class index -> its colour."""
    table = np.zeros((1, 256, 3), np.uint8)
    rgb = np.asarray(info.colors[:256], np.uint8)
    table[0, : len(rgb)] = rgb[:, ::-1]
    return table


def colourize(mask, table):
    """Class map -> BGR colour image at the same size, by table lookup (no Python loop)."""
    if mask.dtype == np.uint8:
        return cv2.LUT(cv2.merge([mask, mask, mask]), table)
    return table[0][np.minimum(mask, 255)]


def render(frame, result, info, table, mode="overlay", alpha=0.5, background=None):
    """One model's result drawn on ``frame`` (BGR uint8) in ``mode``; returns a new image.

    ``background`` is the picture that ``replace`` puts behind the foreground.
    """
    if isinstance(result, Classification):
        shown = frame.copy() if mode != "side-by-side" else cv2.hconcat([frame, frame])
        draw_top_k(shown, result, info)
        return shown
    height, width = frame.shape[:2]
    if mode in BACKGROUND_MODES:
        return behind_foreground(frame, result.mask, background if mode == "replace" else None)
    colours = cv2.resize(colourize(result.mask, table), (width, height), interpolation=cv2.INTER_NEAREST)
    if mode == "mask":
        shown = colours
    else:
        shown = cv2.addWeighted(frame, 1.0 - alpha, colours, alpha, 0.0)
        if mode == "side-by-side":
            shown = cv2.hconcat([frame, shown])
    draw_legend(shown, result.areas, info)
    return shown


def behind_foreground(frame, mask, background=None):
    """``frame`` with its background (class 0 of ``mask``) blurred, or replaced by ``background``; the
    foreground pixels are copied unchanged."""
    height, width = frame.shape[:2]
    if background is None:
        side = max(3, (max(height, width) // 40) | 1)
        shown = cv2.stackBlur(frame, (side, side)) if hasattr(cv2, "stackBlur") else cv2.blur(frame, (side, side))
    else:
        shown = background if background.shape[:2] == (height, width) else cv2.resize(background, (width, height))
        shown = shown.copy()
    foreground = cv2.resize((mask > 0).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    cv2.copyTo(frame, foreground, shown)
    return shown


def text_scale(image):
    """Font scale that keeps text readable from 160 to 1920 pixels wide."""
    return float(np.clip(image.shape[1] / 1100.0, 0.3, 1.2))


def draw_lines(image, lines, origin=(4, 4), swatches=None):
    """Draw ``lines`` in a dark box at ``origin``; negative x or y count from the right or bottom edge."""
    scale = text_scale(image)
    thickness = 1 if scale < 0.8 else 2
    (_, line_h), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    step = line_h + base + 3
    swatch = step - 4 if swatches else 0
    width = max(cv2.getTextSize(s, FONT, scale, thickness)[0][0] for s in lines) + swatch + 10
    height = step * len(lines) + 4
    x, y = origin
    x = max(image.shape[1] - width + x + 1 if x < 0 else x, 0)
    y = max(image.shape[0] - height + y + 1 if y < 0 else y, 0)
    cv2.rectangle(image, (x, y), (x + width, y + height), PANEL, cv2.FILLED)
    for i, line in enumerate(lines):
        top = y + 3 + i * step
        if swatches:
            cv2.rectangle(image, (x + 4, top + 1), (x + 4 + swatch - 2, top + swatch - 1), swatches[i], cv2.FILLED)
        cv2.putText(image, line, (x + 6 + swatch, top + line_h + 1), FONT, scale, TEXT, thickness, cv2.LINE_AA)


def draw_legend(image, areas, info, items=LEGEND_ITEMS):
    """The classes present, by area, top-right: colour, name, share of the frame."""
    shown = areas[:items]
    if not shown:
        return
    lines = [f"{info.class_names[c]} {100 * f:.0f}%" for c, f in shown]
    swatches = [tuple(int(v) for v in info.colors[c][::-1]) for c, _ in shown]
    draw_lines(image, lines, origin=(-4, 4), swatches=swatches)


def draw_top_k(image, result, info):
    """The top-k classes with probabilities, top-right."""
    lines = [f"{info.class_names[c]} {100 * p:.1f}%" for c, p in result.top]
    draw_lines(image, lines, origin=(-4, 4))


def stats_lines(fps, stages_ms, title=None, latency_ms=None):
    """Text for the frame: FPS, the latency (capture to display) and the last per-stage times, in milliseconds."""
    short = {"capture": "cap", "preprocess": "pre", "inference": "infer", "postprocess": "post", "render": "draw"}
    parts = " ".join(f"{short.get(k, k)} {v:.1f}" for k, v in stages_ms.items())
    latency = f"  latency {latency_ms:.1f} ms |" if latency_ms else ""
    lines = [f"{fps:.1f} FPS{latency}  {parts} ms"]
    return ([title] if title else []) + lines


def model_title(info, inference_ms):
    """One panel's caption for --compare: file name, latency, multiply-adds."""
    macs = f", {info.macs / 1e9:.2f} GMACs" if info.macs else ""
    return f"{Path(info.path).stem}: {inference_ms:.1f} ms{macs}"


def side_by_side(panels):
    """Panels of equal height next to each other."""
    height = min(p.shape[0] for p in panels)
    fitted = [p if p.shape[0] == height else cv2.resize(p, (p.shape[1] * height // p.shape[0], height)) for p in panels]
    return cv2.hconcat(fitted)
