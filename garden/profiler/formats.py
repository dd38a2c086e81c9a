"""The cost table as text, Markdown, CSV and JSON."""

import csv
import io
import json
from dataclasses import asdict

COLUMNS = (
    ("layer", "name"),
    ("type", "type"),
    ("input", "input_shape"),
    ("output", "output_shape"),
    ("filters", "filters"),
    ("kernel", "kernel"),
    ("stride", "stride"),
    ("pad", "padding"),
    ("dilation", "dilation"),
    ("memory KB", "memory_kb"),
    ("params", "params"),
    ("MACs", "macs"),
    ("RF", "receptive_field"),
)


def _shape(value):
    if not value:
        return ""
    if isinstance(value[0], list):
        return " + ".join(_shape(v) for v in value)
    return "x".join("?" if d is None else str(d) for d in value)


def _pair(value):
    if value is None:
        return ""
    if isinstance(value, list) and len(set(map(str, value))) == 1:
        return str(value[0])
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def _cell(key, value):
    if key in ("input_shape", "output_shape"):
        return _shape(value)
    if key == "kernel":
        return "" if value is None else "x".join(map(str, value))
    if key in ("stride", "dilation", "padding", "receptive_field"):
        return _pair(value)
    if key == "memory_kb":
        return f"{value:,.1f}"
    if key in ("params", "macs"):
        return f"{value:,}"
    return "" if value is None else str(value)


def _rows(profile):
    rows = [[_cell(key, getattr(row, key)) for _, key in COLUMNS] for row in profile.layers]
    total = profile.total
    rows.append(
        [
            "total",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            _cell("memory_kb", total["memory_kb"]),
            _cell("params", total["params"]),
            _cell("macs", total["macs"]),
            "",
        ]
    )
    return rows


def summary(profile):
    """Two lines: the totals in human units, then what dominates where."""
    total = profile.total
    return (
        f"{profile.model} at {_shape(profile.input_shape)}: {total['params']:,} parameters "
        f"({total['trainable_params']:,} trainable, {total['non_trainable_params']:,} non-trainable), "
        f"{total['macs'] / 1e6:,.1f}M multiply-adds, {total['memory_kb'] / 1024:,.2f} MB of activations"
    )


def to_markdown(profile):
    header = [title for title, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(profile)]
    lines += ["", summary(profile)]
    lines += [f"- note: {note}" for note in profile.notes]
    return "\n".join(lines)


def to_text(profile):
    header = [title for title, _ in COLUMNS]
    rows = [header] + _rows(profile)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {title for title, key in COLUMNS if key in ("memory_kb", "params", "macs", "receptive_field")}

    def line(row):
        cells = [cell.rjust(w) if title in numeric else cell.ljust(w) for cell, w, title in zip(row, widths, header)]
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in rows[1:]]
    out += ["", summary(profile)] + [f"note: {note}" for note in profile.notes]
    return "\n".join(out)


def to_csv(profile):
    buffer = io.StringIO()
    fields = list(asdict(profile.layers[0]).keys()) if profile.layers else []
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in profile.layers:
        record = asdict(row)
        record["notes"] = "; ".join(record["notes"])
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in record.items()})
    return buffer.getvalue()


def to_json(profile):
    return json.dumps(profile.to_dict(), indent=2)
