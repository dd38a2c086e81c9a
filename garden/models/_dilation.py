"""Output stride by dilation, for backbones under dense-prediction heads.

Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation" (DeepLabv3, 2017),
Section 3.1: once the network's stride reaches ``output_stride``, later strides become 1 and the
convolutions after them dilate by the skipped factor instead, so the receptive field is kept while
the feature map stays at ``input / output_stride``. The layer whose stride is removed still uses the
old rate; the rate grows for the layers after it.
"""

from garden.errors import GardenError

OUTPUT_STRIDES = (8, 16, 32)


class OutputStride:
    """Walks a backbone's strides: ``step(s)`` returns the ``(strides, dilation_rate)`` to build with.

    >>> walk = OutputStride(16)
    >>> [walk.step(2) for _ in range(5)], walk.stride, walk.rate
    ([(2, 1), (2, 1), (2, 1), (2, 1), (1, 1)], 16, 2)
    """

    def __init__(self, output_stride=32):
        check_output_stride(output_stride)
        self.output_stride = output_stride
        self.stride = 1
        self.rate = 1

    def step(self, strides):
        """Strides and dilation rate of a layer that asks for ``strides``."""
        if strides == 1:
            return 1, self.rate
        if self.stride * strides > self.output_stride:
            rate, self.rate = self.rate, self.rate * strides
            return 1, rate
        self.stride *= strides
        return strides, self.rate


def check_output_stride(output_stride, allowed=OUTPUT_STRIDES):
    """The one check of an ``output_stride`` argument, for backbones and segmenters alike."""
    if output_stride not in allowed:
        choices = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
        raise GardenError(f"output_stride must be {choices}; got {output_stride!r}")
