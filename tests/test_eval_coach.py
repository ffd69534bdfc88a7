"""scripts/eval-coach: the corpus it scores is complete and split as documented, and its scoring and
bad-input handling behave. (Running it is an evaluation, not a test: docs/EVALUATION.md.)"""

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "eval-coach"
EVAL = REPO / "tests" / "fixtures" / "eval"
CORE = ("slow_down", "acknowledge", "set_boundary", "call_supervisor")


def load_script():
    loader = importlib.machinery.SourceFileLoader("eval_coach", str(SCRIPT))
    spec = importlib.util.spec_from_loader("eval_coach", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_coach"] = module
    loader.exec_module(module)
    return module


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_the_corpus_is_split_with_every_kind_and_synthesiser_in_both_sets():
    sizes = {}
    for split in ("tune", "heldout"):
        specs = sorted((EVAL / "specs" / split).glob("*.json"))
        sizes[split] = len(specs)
        kinds, engines = set(), set()
        for spec in specs:
            manifest = json.loads((EVAL / "calls" / split / spec.name).read_text())
            assert (EVAL / "calls" / split / f"{spec.stem}.flac").is_file()
            s = json.loads(spec.read_text())
            assert [" ".join(t["text"].split()) for t in s["turns"]] == [t["text"] for t in manifest["turns"]], \
                f"{spec.name}: manifest is stale, run scripts/make-call"
            assert 12 <= manifest["duration"] <= 25
            kinds |= {e["kind"] for e in manifest["expect_nudges"]}
            engines |= {t.get("engine", "espeak") for t in manifest["turns"]}
        assert set(CORE) <= kinds, f"{split}: {kinds}"
        assert engines == {"espeak", "flite", "festival"}, f"{split}: {engines}"
    assert sum(sizes.values()) >= 40 and abs(sizes["tune"] - sizes["heldout"]) <= 2, sizes
    tune = {p.stem for p in (EVAL / "specs" / "tune").glob("*.json")}
    assert not tune & {p.stem for p in (EVAL / "specs" / "heldout").glob("*.json")}
    total = sum(p.stat().st_size for p in (EVAL / "calls").rglob("*.flac"))
    assert total <= 20 * 1024 * 1024, f"corpus audio is {total / 2**20:.1f} MiB"


def test_a_nudge_counts_only_inside_its_window_and_forbidden_kinds_anywhere():
    ec = load_script()
    manifest = json.loads((EVAL / "calls" / "tune" / "ev_cs_boss_put_through.json").read_text())
    call = ec.Call("ev_cs_boss_put_through", "tune", Path("x.flac"), manifest)
    end = manifest["expect_nudges"][0]["trigger_end"]

    def nudges(*pairs):
        return [{"type": "nudge", "kind": k, "t": t} for k, t in pairs]

    assert ec.score(call, "clean", nudges(("call_supervisor", end + 3.9)), None).expected[0]["hit"]
    assert ec.score(call, "clean", nudges(("call_supervisor", end - 0.4)), None).expected[0]["hit"]
    late = ec.score(call, "clean", nudges(("call_supervisor", end + 4.1), ("set_boundary", 2.0)), None)
    assert not late.expected[0]["hit"]
    assert [f["kind"] for f in late.forbidden if f["raised_at"]] == ["set_boundary"]
    table = ec.table([late])
    assert table["kinds"]["call_supervisor"] == {"expected": 1, "hit": 0, "forbidden": 0, "raised": 0}
    assert table["kinds"]["set_boundary"]["raised"] == 1
    # a replay that failed hits nothing
    assert not ec.score(call, "clean", nudges(("call_supervisor", end)), "boom").expected[0]["hit"]


@pytest.mark.parametrize("args,wanted", [
    (["--only", "no_such_call"], "no call named no_such_call"),
    (["--label", "after", "--set", "tune"], "--label records the whole corpus"),
    (["--label", "Bad Label"], "--label must be"),
])
def test_bad_input_is_one_line_and_exit_2(args, wanted):
    result = run(*args)
    assert result.returncode == 2
    assert wanted in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
