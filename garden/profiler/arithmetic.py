"""The lecture's cost arithmetic as plain functions: output sizes, receptive fields, multiply-adds."""

from fractions import Fraction


class UnevenStrideError(ValueError):
    """``(N - F + 2P) / S + 1`` is not an integer: the stride does not tile the input."""


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1, strict=True):
    """Output length of a convolution or pooling window: ``(N - F + 2P) / S + 1``.

    ``F`` is the dilated kernel extent ``dilation * (kernel - 1) + 1``. When ``S`` does not divide
    ``N - F + 2P`` the result is not an integer (N=7, F=3, S=3 gives 2.33): with ``strict`` that
    raises :class:`UnevenStrideError`; otherwise the exact fraction is returned for the caller to
    report (frameworks floor it and silently drop the last rows and columns).
    """
    extent = dilation * (kernel - 1) + 1
    exact = Fraction(size - extent + 2 * padding, stride) + 1
    if exact < 1:
        raise ValueError(f"a window of {extent} does not fit an input of {size} with padding {padding}")
    if strict and exact.denominator != 1:
        raise UnevenStrideError(describe_uneven(size, extent, stride, 2 * padding))
    return int(exact) if exact.denominator == 1 else exact


def describe_uneven(size, extent, stride, total_padding):
    """One sentence naming an uneven stride, e.g. ``(7 - 3 + 2*0) / 3 + 1 = 2.33``."""
    exact = Fraction(size - extent + total_padding, stride) + 1
    pad = f"2*{total_padding // 2}" if total_padding % 2 == 0 else str(total_padding)
    return (
        f"stride {stride} does not divide the input: ({size} - {extent} + {pad}) / {stride} + 1 "
        f"= {float(exact):.2f}, floored to {int(exact)}"
    )


def stack_receptive_field(num_layers, kernel):
    """Receptive field of ``num_layers`` stacked stride-1 ``kernel x kernel`` convolutions: ``1 + L(n-1)``."""
    return 1 + num_layers * (kernel - 1)


def receptive_field(layers):
    """Receptive field of a chain of ``(kernel, stride, dilation)`` layers (Araujo et al., Distill 2019).

    Each layer widens the field by ``(dilated kernel - 1) x`` the product of the strides before it.
    """
    field, jump = 1, 1
    for kernel, stride, dilation in layers:
        field += dilation * (kernel - 1) * jump
        jump *= stride
    return field


def conv_macs(out_height, out_width, in_channels, out_channels, kernel, groups=1):
    """Multiply-adds of a convolution: output elements x ``C_in / groups`` x ``K x K``."""
    return out_height * out_width * out_channels * (in_channels // groups) * kernel * kernel


def separable_macs(out_height, out_width, in_channels, out_channels, kernel):
    """Depthwise ``K x K`` per channel plus pointwise 1x1 (MobileNets, Eq. 4)."""
    depthwise = out_height * out_width * in_channels * kernel * kernel
    return depthwise + out_height * out_width * in_channels * out_channels


def separable_ratio(out_channels, kernel):
    """Cost of depthwise-separable over standard convolution: ``1/N + 1/D_K^2`` (MobileNets, Eq. 5)."""
    return 1 / out_channels + 1 / kernel**2


def bottleneck_example(size=28, in_channels=192, out_channels=32, kernel=5, reduced=16):
    """The lecture's 1x1-bottleneck example: ``(direct, reduce_1x1, then_kxk)`` multiply-adds.

    28x28x192 into 32 filters of 5x5 with 'same' padding costs 28*28*32*192*25 = 120.4M; a 1x1
    reduction to 16 channels first costs 28*28*16*192 = 2.4M, then 28*28*32*16*25 = 10.0M.
    """
    direct = conv_macs(size, size, in_channels, out_channels, kernel)
    reduce = conv_macs(size, size, in_channels, reduced, 1)
    then = conv_macs(size, size, reduced, out_channels, kernel)
    return direct, reduce, then
