"""`finetune-compare export`: every registered method, on the tiny random RoBERTa and the embedded MiniLM, exported
from a trained run, reloaded by plain transformers and ONNX Runtime, and checked against the run's predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from finetune_compare.cli import main
from finetune_compare.errors import UserError
from finetune_compare.experiments.commands import export as export_command
from finetune_compare.experiments.commands.export import EXPORT_FILE, export_run
from finetune_compare.methods import method_names

FIXTURE = Path(__file__).parent.parent / "fixtures" / "quickstart-fp32"


def _trained(model_name: str, tmp: Path) -> Path:
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    from ..conftest import tiny_config

    config = tiny_config(model_name, tmp, methods=list(method_names()), num_epochs=1, max_length=32,
                         evaluations_per_epoch=1, test_samples_per_class=10, save_model=True, drift=False,
                         evaluate_base_model=False)
    ComparisonExperiment(config).run_multiple_runs()
    return Path(config.experiment.output_dir)


@pytest.fixture(scope="module")
def roberta_runs(tiny_roberta, tmp_path_factory):
    return _trained(tiny_roberta, tmp_path_factory.mktemp("export-roberta"))


@pytest.fixture(scope="module")
def minilm_runs(tmp_path_factory):
    return _trained("embedded-minilm", tmp_path_factory.mktemp("export-minilm"))


def _run_predictions(run_dir: Path) -> tuple[list[str], np.ndarray, list[str]]:
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    labels = list(rows[0]["probabilities"])
    return [r["text"] for r in rows], np.array([[r["probabilities"][n] for n in labels] for r in rows]), labels


def _check_export(runs: Path, method: str, out: Path, onnx: bool = True) -> None:
    """What a user does with the folder, by hand: plain transformers and ONNX Runtime, offline."""
    import onnxruntime
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = export_run(runs, out, method=method, onnx=onnx)
    run_dir = runs / "runs" / method / f"seed-{info['seed']}"
    texts, reference, labels = _run_predictions(run_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(out), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert [model.config.id2label[i] for i in range(len(labels))] == labels
    enc = tokenizer(texts, padding=True, truncation=True, max_length=info["max_length"], return_tensors="pt")
    with torch.no_grad():
        probs = model(**enc).logits.softmax(-1).numpy()
    assert np.abs(probs - reference).max() <= 1e-4
    saved = json.loads((out / EXPORT_FILE).read_text())
    assert saved["check"]["runtimes"]["transformers"]["passed"]
    assert saved["merged"] == (method not in ("full", "head"))
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "## Export check" in card and f"Method: {method}" in card
    assert "macro_f1 |" in card and "percentile bootstrap" in card
    if not onnx:
        return
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = tokenizer(texts, padding=True, truncation=True, max_length=info["max_length"], return_tensors="np")
    logits = session.run(["logits"], {i.name: enc[i.name] for i in session.get_inputs()})[0]
    onnx_probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.abs(onnx_probs - reference).max() <= 1e-3
    assert saved["check"]["runtimes"]["onnx"]["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("method", method_names())
def test_every_method_exports_from_tiny_roberta(roberta_runs, method, tmp_path):
    _check_export(roberta_runs, method, tmp_path / method)


@pytest.mark.slow
@pytest.mark.parametrize("method", method_names())
def test_every_method_exports_from_embedded_minilm(minilm_runs, method, tmp_path):
    # merged, every adapter method is a plain BertForSequenceClassification: the graph ONNX gets is the same for
    # each, so MiniLM's ONNX export (5 s each) is checked on full and lora; tiny RoBERTa checks it for every method
    _check_export(minilm_runs, method, tmp_path / method, onnx=method in ("full", "lora"))
    card = (tmp_path / method / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card


@pytest.mark.slow
def test_median_run_is_taken_and_named(roberta_runs, tmp_path, capsys):
    code = main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(tmp_path / "e")])
    out = capsys.readouterr().out
    assert code == 0 and "nearest to lora's median" in out and "label agreement 100.00%" in out


@pytest.mark.slow
def test_overwrite_replaces_only_what_export_wrote(roberta_runs, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "--run", str(roberta_runs), "--method", "ia3", "--output", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / EXPORT_FILE).read_text())["method"] == "ia3"


@pytest.mark.slow
def test_a_failed_check_keeps_nothing(roberta_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(export_command.TOLERANCE, "fp32", {"transformers": 0.0, "onnx": 0.0})
    out = tmp_path / "e"
    assert main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not reproduce the run's predictions" in err and "nothing was kept" in err
    assert not out.exists() and not list(tmp_path.glob(".e.export-*"))


@pytest.mark.slow
def test_a_method_peft_cannot_merge_exports_base_plus_adapter(roberta_runs, tmp_path, monkeypatch):
    from finetune_compare.models import export as model_export

    def no_merge(model):
        return None, "LORA cannot be merged by peft (test)"

    monkeypatch.setattr(model_export, "merge", no_merge)
    info = export_run(roberta_runs, tmp_path / "e", method="lora")
    assert not info["merged"] and info["not_merged"].startswith("LORA cannot")
    assert (tmp_path / "e" / "adapter_config.json").is_file()
    assert info["check"]["runtimes"]["transformers"]["passed"]
    assert "AutoPeftModelForSequenceClassification" in (tmp_path / "e" / "README.md").read_text()


@pytest.mark.slow
def test_a_model_onnx_cannot_take_is_named_and_the_rest_exported(roberta_runs, tmp_path, monkeypatch, capsys):
    import torch

    def refuse(*args, **kwargs):
        raise RuntimeError("## Exception summary\n\n<class 'X'>: unsupported operator aten::fancy")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    assert main(["export", "--run", str(roberta_runs), "--method", "full", "--output", str(tmp_path / "e"),
                 "--onnx"]) == 0
    out = capsys.readouterr().out
    assert "onnx: not written: ONNX export failed at the RobertaForSequenceClassification" in out
    assert "aten::fancy" in out and not (tmp_path / "e" / "model.onnx").exists()


# bad input: answered from the files, before any model is loaded

def test_a_run_without_a_saved_model_says_to_save_it(tmp_path, capsys):
    assert main(["export", "--run", str(FIXTURE / "runs" / "lora" / "seed-42"), "--output", str(tmp_path / "e")]) == 2
    assert "has no saved model: train with save_model: true" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    ([], "is a comparison folder: add --method"),
    (["--method", "dora"], "--method dora: no finished run of it"),
    (["--method", "lora", "--seed", "7"], "--seed 7: lora has no finished run with that seed"),
])
def test_a_comparison_folder_needs_a_method_it_has(args, message, tmp_path, capsys):
    assert main(["export", "--run", str(FIXTURE), "--output", str(tmp_path / "e"), *args]) == 2
    assert message in capsys.readouterr().err


def test_an_output_folder_export_did_not_write_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE / "runs" / "lora" / "seed-42", run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["saved_model"] = {"path": str(run / "model"), "bytes": 1}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("x")
    for extra in ([], ["--overwrite"]):
        assert main(["export", "--run", str(run), "--output", str(tmp_path / "mine"), *extra]) == 2
        assert "holds files that no export wrote" in capsys.readouterr().err
    assert (tmp_path / "mine" / "data.csv").read_text() == "x"


def test_not_a_run_or_comparison_folder(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path), "--output", str(tmp_path / "e")]) == 2
    assert "neither a finished run folder" in capsys.readouterr().err


def test_choose_run_refuses_method_with_a_run_folder():
    from finetune_compare.experiments.commands.run_choice import choose_run

    with pytest.raises(UserError, match="is a run folder"):
        choose_run(FIXTURE / "runs" / "lora" / "seed-42", method="lora")


def test_median_run_is_the_one_nearest_the_median():
    from finetune_compare.experiments.commands.run_choice import choose_run

    chosen = choose_run(FIXTURE, method="lora")
    scores = {s: json.loads((FIXTURE / "runs" / "lora" / f"seed-{s}" / "metrics.json").read_text())["test"]["macro_f1"]
              for s in (42, 43, 44)}
    assert chosen.record.seed == sorted(scores, key=scores.get)[1] and "median" in chosen.why


@pytest.mark.slow
def test_an_interrupt_keeps_nothing_half_written(roberta_runs, tmp_path, monkeypatch, capsys):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_command, "_install", stop)  # Ctrl-C after the check, before the move into place
    assert main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(tmp_path / "e")]) == 130
    assert "export to" in capsys.readouterr().err
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e.export-*"))


@pytest.mark.slow
def test_predict_reads_an_export(roberta_runs, tmp_path, capsys):
    assert main(["export", "--run", str(roberta_runs), "--method", "lora", "--output", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "e"), "--text", "what a film"]) == 0
    assert "negative=" in capsys.readouterr().out


@pytest.mark.slow
def test_a_bf16_run_is_checked_with_the_looser_stated_tolerance(tiny_roberta, tmp_path):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    from ..conftest import tiny_config

    config = tiny_config(tiny_roberta, tmp_path, methods=["lora"], num_epochs=1, save_model=True, drift=False,
                         evaluate_base_model=False, mixed_precision="bf16")
    ComparisonExperiment(config).run_multiple_runs()
    info = export_run(config.experiment.output_dir, tmp_path / "e", method="lora")
    check = info["check"]
    assert check["precision_of_run"] == "reduced" and "bf16 autocast" in check["tolerance_note"]
    assert check["runtimes"]["transformers"]["tolerance"] == export_command.TOLERANCE["reduced"]["transformers"]
    assert check["runtimes"]["transformers"]["passed"] and check["runtimes"]["transformers"]["max_abs_diff"] > 0


def test_an_onnx_failure_on_an_adapter_names_its_first_adapted_layer(tiny_bert, monkeypatch):
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from finetune_compare.models.export import OnnxUnsupported, export_onnx

    model = get_peft_model(AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3),
                           LoraConfig(task_type=TaskType.SEQ_CLS, r=2, target_modules=["query"]))

    def refuse(*args, **kwargs):
        raise RuntimeError("## Exception summary\n\n<class 'X'>: no ONNX for this")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(OnnxUnsupported, match=r"at base_model\.model\.bert\.encoder\.layer\.0\.attention\.self\.query "
                                              r"\(Linear\) \(<class 'X'>: no ONNX for this\)"):
        export_onnx(model, AutoTokenizer.from_pretrained(tiny_bert), Path("/nonexistent/m.onnx"), 32)


def test_a_bad_run_folder_is_answered_before_torch_loads(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from finetune_compare.cli import main; rc = main(['export', '--run', sys.argv[1], "
            "'--output', sys.argv[2]]); print('torch' in sys.modules, 'scipy' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "e")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stdout.strip() == "False False", out.stdout + out.stderr
    assert "neither a finished run folder" in out.stderr
