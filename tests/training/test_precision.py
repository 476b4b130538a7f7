"""mixed_precision auto: chosen by a measured probe on CPUs with bf16 instructions, cached, recorded."""

import json

import pytest

from finetune_compare.errors import ConfigError
from finetune_compare.training import device, precision_probe
from finetune_compare.training.precision_probe import PrecisionChoice, decide


def test_the_faster_precision_wins_by_measurement():
    # an AMX-like CPU: bf16 autocast 1.6x faster -> bf16
    amx = decide(fp32_s=0.160, bf16_s=0.100, path="amx")
    assert amx.precision == "bf16" and amx.bf16_speedup == 1.6
    assert amx.reason == "auto: bf16 autocast measured 1.60x fp32's speed on this CPU (AMX)"
    # AVX512-BF16 without AMX: bf16 2.4x slower -> fp32
    avx = decide(fp32_s=0.037, bf16_s=0.087, path="avx512_bf16")
    assert avx.precision == "no" and avx.bf16_speedup == 0.43
    assert avx.reason == "auto: bf16 autocast measured 0.43x fp32's speed on this CPU (AVX512-BF16, no AMX), so fp32"
    assert decide(0.100, 0.098, "amx").precision == "no"  # within 5%: a tie keeps fp32


@pytest.mark.parametrize("timings, expected", [((0.16, 0.10), "bf16"), ((0.037, 0.087), "no")])
def test_auto_on_a_bf16_cpu_takes_the_probe_choice(monkeypatch, timings, expected):
    monkeypatch.setattr(precision_probe, "machine_busy", lambda: False)
    monkeypatch.setattr(precision_probe, "cpu_bf16_path", lambda: "avx512_bf16")
    monkeypatch.setattr(device, "cpu_bf16_path", lambda: "avx512_bf16")
    monkeypatch.setattr(precision_probe, "time_precisions", lambda h, i, r: timings)
    shapes = (int(timings[0] * 1000), 1536, 512)  # shapes of their own: no cached answer from another case
    choice = device.choose_precision("auto", "cpu", shapes)
    assert choice.precision == expected and choice.bf16_speedup == round(timings[0] / timings[1], 2)
    assert device.resolve_precision("auto", "cpu", shapes) == expected  # cached now: the same answer
    assert device.choose_precision("no", "cpu", shapes) == PrecisionChoice("no", "set by mixed_precision")
    assert device.choose_precision("bf16", "cpu", shapes).precision == "bf16"  # the user's setting is kept
    # memory over speed: bf16 wherever the CPU has it, unprobed
    assert device.choose_precision("auto", "cpu", shapes, prefer_memory=True).precision == "bf16"


def test_a_cpu_without_bf16_instructions_is_not_probed(monkeypatch):
    monkeypatch.setattr(device, "cpu_bf16_path", lambda: "none")
    monkeypatch.setattr(precision_probe, "time_precisions", lambda *a: pytest.fail("probed"))
    choice = device.choose_precision("auto", "cpu")
    assert choice.precision == "no" and "no bf16 instructions" in choice.reason
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        device.choose_precision("fp16", "cpu")


def test_the_probe_is_cached_per_machine_and_shape(monkeypatch, tmp_path):
    monkeypatch.setenv("FINETUNE_COMPARE_CACHE", str(tmp_path))
    monkeypatch.setattr(precision_probe, "machine_busy", lambda: False)
    calls = []
    monkeypatch.setattr(precision_probe, "time_precisions", lambda h, i, r: calls.append((h, i, r)) or (0.1, 0.2))
    first = precision_probe.probe_cpu_precision(384, 1536, 4096)
    again = precision_probe.probe_cpu_precision(384, 1536, 5000)  # both past the row cap: the same probe
    other = precision_probe.probe_cpu_precision(768, 3072, 4096)
    assert calls == [(384, 1536, 512), (768, 3072, 141)] and first == again and other.precision == "no"
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert len(cached) == 2 and {v["precision"] for v in cached.values()} == {"no"}
    (tmp_path / "precision.json").write_text("not json")  # a damaged cache is measured again, not trusted
    assert precision_probe.probe_cpu_precision(384, 1536, 4096) == first and len(calls) == 3


def test_the_real_probe_times_both_precisions():
    fp32, bf16 = precision_probe.time_precisions(32, 64, 256)
    assert fp32 > 0 and bf16 > 0


def test_a_probe_taken_on_a_busy_machine_is_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("FINETUNE_COMPARE_CACHE", str(tmp_path))
    monkeypatch.setattr(precision_probe, "machine_busy", lambda: True)
    monkeypatch.setattr(precision_probe, "time_precisions", lambda h, i, r: (0.1, 0.2))
    assert precision_probe.probe_cpu_precision(384, 1536, 512).precision == "no"
    assert not (tmp_path / "precision.json").exists()
