"""The command line: each bad input gives one clear message and exit status 2, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_compare.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["--mode", "lora", "--method", "both"], "error: lora does not take --method both (see: finetune-compare lora --help)"),
    (["--mode", "data", "--config", "nope.yaml"], "error: config file 'nope.yaml' does not exist or is not a file"),
    (["--mode", "data", "--set", "lora_rank=4"], "error: unknown --set key 'lora_rank'; did you mean 'lora_r'?"),
    (["--mode", "data", "--set", "batch_size=0"], "error: config key 'batch_size': must be >= 1, got 0"),
    (["--mode", "optimize", "--trials", "-1"], "error: --trials must be between 0 and 100,000, got -1"),
    (["--mode", "data", "--storage", "sqlite:///x.db"],
     "error: data does not take --storage sqlite:///x.db (see: finetune-compare data --help)"),
    (["--mode", "report"], "error: the following arguments are required: --results (see: finetune-compare report --help)"),
    (["data", "--trials", "3"], "error: data does not take --trials 3 (see: finetune-compare data --help)"),
    (["--mode", "predict"], "error: the following arguments are required: --model"),
    (["--mode", "data", "--set", "data_source=local", "--set", "data_dir=/no/such/dir"],
     "error: data_dir '/no/such/dir' does not exist or is not a directory"),
    (["--mode", "full", "--set", "model_name=./no/such/model", "--set", "data_source=embedded"],
     "error: model './no/such/model' is not an existing model directory nor a valid hub id"),
    (["nosuchmode"], "error: argument COMMAND: invalid choice: 'nosuchmode'"),
])
def test_bad_input_one_message_exit_2(capsys, tmp_path, argv, message):
    extra = [] if argv[-1] in ("report", "predict") or argv[0] == "nosuchmode" else ["--output-dir", str(tmp_path / "out")]
    try:
        code = main([*argv, *extra])
    except SystemExit as exc:  # argparse's own errors exit through our one-line error()
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_is_per_command_and_fast():
    import time

    start = time.perf_counter()
    top = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True)
    assert time.perf_counter() - start < 5 and top.returncode == 0  # no torch/transformers before parsing
    for mode in ("compare", "optimize", "predict", "report", "config", "data"):
        assert mode in top.stdout
    pred = subprocess.run([sys.executable, str(ROOT / "main.py"), "--mode", "predict", "--help"],
                          capture_output=True, text=True).stdout
    assert "--model" in pred and "--trials" not in pred and "examples:" in pred
    opt = subprocess.run([sys.executable, str(ROOT / "main.py"), "optimize", "--help"], capture_output=True,
                         text=True).stdout
    assert "--trials" in opt and "--model" not in opt
    version = subprocess.run([sys.executable, str(ROOT / "main.py"), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("finetune-compare 0.")


def test_config_command_lists_keys_and_shows_the_resolved_config(capsys):
    code, out, _ = run_cli(capsys, "config", "--list")
    assert code == 0 and "lora_r  (method.lora; an integer; default: 8)" in out and "primary_metric" in out
    code, out, _ = run_cli(capsys, "config", "--config", str(ROOT / "configs/quickstart.yaml"), "--set", "lora_r=16",
                           "--set", "tracking.mlflow_uri=http://u:secretpw@h:5000")
    assert code == 0 and "lora_r: 16" in out and "model_name: embedded-minilm" in out
    assert "secretpw" not in out and "u:***@h:5000" in out


def test_output_dir_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run_cli(capsys, "--mode", "data", "--output-dir", str(target))
    assert code == 2 and "exists and is a file" in err


def test_data_mode_writes_summary(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--mode", "data", "--config", str(ROOT / "configs/quickstart.yaml"),
                           "--output-dir", str(tmp_path))
    assert code == 0
    summary = json.loads((tmp_path / "data_summary.json").read_text())
    assert summary["sizes"]["test"] == 450 and summary["token_lengths"]["train"]["imdb"]["p50"] > 100
    assert "Examples per split x source x label" in out and "Text length in tokens" in out


def test_data_mode_without_offline_tokenizer_still_reports(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--mode", "data", "--set", "data_source=embedded", "--set",
                           "samples_per_class=70", "--set", "test_samples_per_class=20", "--output-dir", str(tmp_path))
    assert code == 0
    summary = json.loads((tmp_path / "data_summary.json").read_text())
    assert summary["token_lengths"] is None and "not available offline" in summary["token_lengths_note"]


@pytest.mark.slow
def test_train_then_predict(capsys, tmp_path, tiny_bert):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "--mode", "lora", "--output-dir", str(out_dir), "--set", f"model_name={tiny_bert}",
                             "--set", "data_source=embedded", "--set", "samples_per_class=70", "--set",
                             "test_samples_per_class=10", "--set", "num_epochs=1", "--set", "save_model=true",
                             "--set", "mixed_precision=no", "--set", "batch_size=8")
    assert code == 0, err
    assert "lora: test macro-F1" in out
    model_dir = out_dir / "runs" / "lora" / "seed-42" / "model"
    code, out, _ = run_cli(capsys, "--mode", "predict", "--model", str(model_dir), "--text", "What a great film!")
    assert code == 0 and out.split()[0] in ("negative", "neutral", "positive") and "positive=" in out
    inp = tmp_path / "in.csv"
    inp.write_text("text\nawful\nfine I guess\n")
    code, out, _ = run_cli(capsys, "--mode", "predict", "--model", str(model_dir), "--input", str(inp),
                           "--output", str(tmp_path / "pred.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert code == 0 and [r["text"] for r in rows] == ["awful", "fine I guess"]
    assert abs(rows[0]["p_negative"] + rows[0]["p_neutral"] + rows[0]["p_positive"] - 1) < 1e-4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n')
    code, _, err = run_cli(capsys, "--mode", "predict", "--model", str(model_dir), "--input", str(bad))
    assert code == 2 and f"{bad}:2: malformed JSON line" in err
    code, _, err = run_cli(capsys, "--mode", "predict", "--model", str(tmp_path), "--text", "x")
    assert code == 2 and "is not a model saved by finetune-compare" in err

    # every input column is kept, a BOM is accepted, a field over csv's 131,072-character default is read
    inp.write_text("\ufeffid,text,label\n7,awful,negative\n8," + "long " * 30000 + ",positive\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--mode", "predict", "--model", str(model_dir), "--input", str(inp),
                           "--output", str(tmp_path / "pred.csv"))
    assert code == 0, err
    import csv

    rows = list(csv.DictReader((tmp_path / "pred.csv").open()))
    assert [r["id"] for r in rows] == ["7", "8"] and rows[0]["label"] == "negative"
    assert rows[0]["predicted_label"] in ("negative", "neutral", "positive") and "p_positive" in rows[0]


def _predict_error(capsys, model_dir, *args) -> str:
    code, _, err = run_cli(capsys, "--mode", "predict", "--model", str(model_dir), *args)
    assert code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.slow
def test_predict_bad_input_gives_one_line(capsys, tmp_path, tiny_bert):
    import shutil

    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, "--mode", "full", "--output-dir", str(out_dir), "--set", f"model_name={tiny_bert}",
                           "--set", "data_source=embedded", "--set", "samples_per_class=70", "--set",
                           "test_samples_per_class=10", "--set", "num_epochs=1", "--set", "save_model=true",
                           "--set", "mixed_precision=no", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false")
    assert code == 0, err
    model = out_dir / "runs" / "full" / "seed-42" / "model"
    short = tmp_path / "short.csv"
    short.write_text("id,text\n1\n")
    assert _predict_error(capsys, model, "--input", str(short)) == \
        f"error: {short}:2: the row has no 'text' value (fewer cells than the header)"
    assert _predict_error(capsys, model, "--text", "x", "--output", str(tmp_path)) == \
        f"error: --output '{tmp_path}' is a folder; give a file name ending in .csv or .jsonl"
    assert _predict_error(capsys, model, "--text", "x", "--output", str(tmp_path / "no" / "p.csv")) == \
        f"error: --output '{tmp_path / 'no' / 'p.csv'}': folder '{tmp_path / 'no'}' does not exist"
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "finetune_compare.json").write_text('{"max_len')
    assert _predict_error(capsys, broken, "--text", "x").startswith(f"error: '{broken / 'finetune_compare.json'}' is corrupt")
    shutil.rmtree(broken)
    shutil.copytree(model, broken)
    (broken / "model.safetensors").unlink()
    assert _predict_error(capsys, broken, "--text", "x") == (
        f"error: '{broken}' has no weights file (model.safetensors or pytorch_model.bin or "
        "model.safetensors.index.json); the save was incomplete: save the model again")
    weights = model / "model.safetensors"
    shutil.rmtree(broken)
    shutil.copytree(model, broken)
    (broken / "model.safetensors").write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert _predict_error(capsys, broken, "--text", "x").startswith(f"error: cannot load the model saved in '{broken}'")


@pytest.mark.slow
def test_main_py_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--mode", "data", "--set", "lora_r=-1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: config key 'lora_r': must be >= 1, got -1"


def test_end_of_run_says_how_to_open_tracker_output(tmp_path):
    from finetune_compare.cli_output import _tracker_hints

    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").write_bytes(b"")
    (tmp_path / "wandb" / "offline-run-1").mkdir(parents=True)
    hints = _tracker_hints(tmp_path)
    assert hints[0] == f"MLflow:  mlflow ui --backend-store-uri sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    assert hints[1].startswith(f"W&B:     wandb sync {tmp_path / 'wandb'}/offline-run-*")
    assert _tracker_hints(tmp_path / "nothing") == []


@pytest.mark.slow
def test_the_first_line_comes_before_the_libraries_load_and_every_run_gets_a_line(tiny_bert, tmp_path):
    """Piped to a file (no terminal, no bars): what will run comes first, before torch is imported; then one line
    per run started and finished, with 'run k of N' and the time left for the whole command."""
    argv = ["compare", "--set", f"model_name={tiny_bert}", "--set", "data_source=embedded", "--set",
            "samples_per_class=70", "--set", "test_samples_per_class=10", "--set", "num_runs=2", "--set",
            "num_epochs=1", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false", "--output-dir",
            str(tmp_path / "o")]
    probe = ("import sys\nfrom finetune_compare import cli\nimport logging\n"
             "class First(logging.Handler):\n    def emit(self, record):\n        if not getattr(self, 'seen', 0):\n"
             "            self.seen = 1\n            print('torch imported at the first line:', 'torch' in sys.modules,"
             " file=sys.stderr)\n"
             "logging.getLogger('finetune_compare').addHandler(First())\nsys.exit(cli.main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert lines[0] == "torch imported at the first line: False"  # so it prints in well under 2 s
    lines = lines[1:]
    assert lines[0].endswith(f"compare: full, lora x 2 paired seeds = 4 runs into {tmp_path / 'o'} (loading the "
                             "libraries...)")
    started = [line for line in lines if "command_progress" in line and " done: " not in line]
    finished = [line for line in lines if "command_progress" in line and " done: " in line]
    assert [line.split(": ", 1)[1].split(" (")[0] for line in started] == [
        "run 1 of 4: full seed 42", "run 2 of 4: lora seed 42", "run 3 of 4: full seed 43", "run 4 of 4: lora seed 43"]
    assert len(finished) == 4 and all("left)" in line for line in finished[:-1])
