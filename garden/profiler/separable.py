"""Standard against depthwise-separable convolution, layer by layer (MobileNets, Section 3.1)."""

from dataclasses import dataclass

from garden.profiler.arithmetic import conv_macs, separable_macs, separable_ratio

_PASS_THROUGH = ("BatchNormalization", "Activation", "ReLU", "GroupNormalization", "Dropout")


@dataclass
class SeparableCost:
    name: str
    form: str  # the form the model uses: "standard" or "separable"
    output_hw: tuple
    in_channels: int
    out_channels: int
    kernel: int
    standard_macs: int
    separable_macs: int

    @property
    def ratio(self):
        """Measured from the two counts: separable over standard."""
        return self.separable_macs / self.standard_macs

    @property
    def theory(self):
        """The lecture's ``1/N + 1/D_K^2``."""
        return separable_ratio(self.out_channels, self.kernel)


def separable_comparison(profile):
    """Every square k x k convolution (k > 1) of ``profile`` priced both ways.

    Standard ``Conv2D`` (one group) rows, ``SeparableConv2D`` rows, and ``DepthwiseConv2D`` rows
    followed (through normalization and activation) by a 1x1 ``Conv2D`` are each one entry.
    """
    rows = profile.layers
    entries = []
    for index, row in enumerate(rows):
        if not row.kernel or row.kernel[0] != row.kernel[1] or row.kernel[0] == 1:
            continue
        k = row.kernel[0]
        if row.type == "Conv2D" and (row.groups or 1) == 1:
            entries.append(_entry(row.name, "standard", row.output_shape, row.input_shape[-1], row.filters, k))
        elif row.type == "SeparableConv2D":
            entries.append(_entry(row.name, "separable", row.output_shape, row.input_shape[-1], row.filters, k))
        elif row.type == "DepthwiseConv2D":
            pointwise = _next_pointwise(rows, index)
            if pointwise is not None:
                entries.append(
                    _entry(row.name, "separable", row.output_shape, row.input_shape[-1], pointwise.filters, k)
                )
    return entries


def _next_pointwise(rows, index):
    for row in rows[index + 1 :]:
        if row.type in _PASS_THROUGH:
            continue
        if row.type == "Conv2D" and row.kernel == [1, 1]:
            return row
        return None
    return None


def _entry(name, form, output_shape, in_channels, out_channels, kernel):
    height, width = output_shape[0], output_shape[1]
    return SeparableCost(
        name=name,
        form=form,
        output_hw=(height, width),
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        standard_macs=conv_macs(height, width, in_channels, out_channels, kernel),
        separable_macs=separable_macs(height, width, in_channels, out_channels, kernel),
    )


def separable_markdown(entries):
    """The comparison as a Markdown table with a totals row."""
    lines = [
        "| layer | form | output | C_in | N | k | standard MACs | separable MACs | ratio | 1/N + 1/k^2 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        lines.append(
            f"| {e.name} | {e.form} | {e.output_hw[0]}x{e.output_hw[1]} | {e.in_channels} | {e.out_channels} | "
            f"{e.kernel} | {e.standard_macs:,} | {e.separable_macs:,} | {e.ratio:.4f} | {e.theory:.4f} |"
        )
    standard = sum(e.standard_macs for e in entries)
    separable = sum(e.separable_macs for e in entries)
    if entries:
        lines.append(f"| total | | | | | | {standard:,} | {separable:,} | {separable / standard:.4f} | |")
    return "\n".join(lines)
