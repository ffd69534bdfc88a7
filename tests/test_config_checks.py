"""Config checks across fields: ordered thresholds and absurd nesting give one line and exit 2."""

import pytest
from conftest import FIXTURES

from monitor.config import ConfigError, load_config

SHORT = FIXTURES / "calls" / "short.flac"


@pytest.mark.parametrize("overrides, keys", [
    ({"analysis.tense": 0.6}, "analysis.tense < analysis.hostile < analysis.abusive"),
    ({"analysis.abusive": 0.5}, "analysis.tense < analysis.hostile < analysis.abusive"),
    ({"vad.neg_threshold": 0.5}, "vad.neg_threshold < vad.threshold"),
    ({"vad.end_partial_ms": 400}, "vad.end_partial_ms < vad.min_silence_ms"),
    ({"analysis.baseline_min_speech_s": 30.0}, "analysis.baseline_min_speech_s < analysis.baseline_speech_s"),
    ({"analysis.fast_wpm": 180.0}, "analysis.fast_min_wpm < analysis.fast_wpm"),
])
def test_thresholds_out_of_order_are_refused_naming_every_key(overrides, keys):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    line = str(info.value)
    assert "\n" not in line and keys in line and "order" in line
    for key, value in overrides.items():
        assert f"{key} = {value!r}" in line


def _deep(depth):
    return "x = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize("toml, needles", [
    ("[analysis]\ntense = 0.9\n", ["analysis.tense", "analysis.abusive", "order"]),
    (_deep(20000), ["nested too deeply"]),
    ("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", ["nested too deeply"]),
], ids=["out-of-order", "deep-arrays", "deep-tables"])
def test_bad_config_is_one_line_and_exit_2(run_callmon, tmp_path, toml, needles):
    cfg = tmp_path / "callmon.toml"
    cfg.write_text(toml)
    result = run_callmon("replay", SHORT, "--config", cfg, "--format", "jsonl", timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("callmon: error:"), result.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
