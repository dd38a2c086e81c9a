"""The cost profiler: the lecture's per-layer table of memory, parameters and multiply-adds."""

from garden._quiet import import_keras_quietly

import_keras_quietly()

from garden.profiler.arithmetic import (
    UnevenStrideError,
    bottleneck_example,
    conv_macs,
    conv_output_size,
    receptive_field,
    separable_macs,
    separable_ratio,
    stack_receptive_field,
)
from garden.profiler.formats import to_csv, to_json, to_markdown, to_text
from garden.profiler.separable import separable_comparison, separable_markdown
from garden.profiler.table import LayerCost, ModelProfile, profile, with_input_shape

__all__ = [
    "LayerCost",
    "ModelProfile",
    "UnevenStrideError",
    "bottleneck_example",
    "conv_macs",
    "conv_output_size",
    "profile",
    "receptive_field",
    "separable_comparison",
    "separable_macs",
    "separable_markdown",
    "separable_ratio",
    "stack_receptive_field",
    "to_csv",
    "to_json",
    "to_markdown",
    "to_text",
    "with_input_shape",
]
