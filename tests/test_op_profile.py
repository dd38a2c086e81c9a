"""``garden bench separable --per-op``: the CPU peaks from the ISA flags and the per-kind op timing."""

import numpy as np
import pytest

from deploy import op_profile

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 9B14
cpu MHz\t\t: 2600.000
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512bw avx512_vnni avx512_bf16

processor\t: 1
vendor_id\t: GenuineIntel
"""
SAPPHIRE_RAPIDS = """vendor_id\t: GenuineIntel
cpu family\t: 6
model name\t: Intel(R) Xeon(R) Platinum 8481C
cpu MHz\t\t: 2000.000
flags\t\t: avx2 fma avx512f avx512_vnni amx_bf16 amx_tile amx_int8
"""
PI4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n"
PI5 = "processor\t: 0\nFeatures\t: fp asimd asimddp crc32 atomics\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"


@pytest.mark.parametrize(
    "text, model, fp32, int8_matrix, int8_depthwise",
    [
        # Zen 4: AVX-512 on two 256-bit halves; vpdpbusd does 4 multiply-adds per 32-bit lane
        (ZEN4, "AMD EPYC 9B14", 2 * 256 // 32, 4 * 2 * 256 // 32, 2 * 256 // 32),
        (SAPPHIRE_RAPIDS, "Intel(R) Xeon(R) Platinum 8481C", 2 * 512 // 32, 16 * 16 * 64 // 16, 2 * 512 // 32),
        (PI4, "Cortex-A72", 2 * 128 // 32, 2 * 128 // 32, 2 * 128 // 32),
        (PI5, "Cortex-A76", 2 * 128 // 32, 4 * 2 * 128 // 32, 2 * 128 // 32),
    ],
)
def test_peaks_from_the_isa_flags(text, model, fp32, int8_matrix, int8_depthwise):
    cpu = op_profile.read_cpu(text)
    assert cpu.model == model
    peaks = op_profile.peaks(cpu)
    assert {peaks[("fp32", kind)][0] for kind in op_profile.KINDS} == {fp32}
    assert peaks[("int8", "pointwise")][0] == peaks[("int8", "standard")][0] == int8_matrix
    assert peaks[("int8", "depthwise")][0] == int8_depthwise


def small_model():
    """Stem 3x3 (standard), depthwise 3x3, pointwise 1x1, then pooling and a classifier ("other")."""
    import keras

    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu", name="pw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="small")


@pytest.mark.slow
def test_op_rows_count_and_time_each_kind(tmp_path):
    from deploy.tflite import convert_tflite

    model = small_model()
    assert [op_profile.conv_kind(layer) for layer in op_profile.convolutions(model)] == [
        "standard",
        "depthwise",
        "pointwise",
    ]
    rng = np.random.default_rng(0)
    whole = tmp_path / "small.tflite"
    convert_tflite(model, (24, 24, 3), "int8", rng.random((4, 24, 24, 3), dtype="float32"), whole)
    cpu = op_profile.read_cpu(ZEN4)
    rows = op_profile.op_rows(model, "int8", whole, tmp_path, 3, cpu)
    by_kind = {r["kind"]: r for r in rows}
    assert list(by_kind) == ["depthwise", "pointwise", "standard", "other"]
    # multiply-adds counted independently: output pixels x taps x input channels per output channel
    assert by_kind["standard"]["macs"] == 12 * 12 * 16 * 3 * 3 * 3
    assert by_kind["depthwise"]["macs"] == 12 * 12 * 16 * 3 * 3
    assert by_kind["pointwise"]["macs"] == 12 * 12 * 32 * 16
    for kind in op_profile.KINDS:
        r = by_kind[kind]
        assert r["ms"] >= 0 and r["ops"] == 1
        assert r["peak_gmacs"] == pytest.approx(op_profile.peaks(cpu)[("int8", kind)][0] * 2.6)
        if r["ms"]:
            assert r["gmacs"] == pytest.approx(r["macs"] / r["ms"] / 1e6)
    assert sum(r["ms"] for r in rows) == pytest.approx(rows[0]["whole_ms"])
    table = op_profile.to_markdown(rows, cpu)
    assert "| small | int8 |" in table and "VNNI" in table
    op_profile.plot(rows, cpu, tmp_path / "per_op.png")
    assert (tmp_path / "per_op.png").stat().st_size > 5000
