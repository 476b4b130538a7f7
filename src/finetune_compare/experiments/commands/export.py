"""`finetune-compare export`: a saved run as the folder somebody serves, verified before it is kept.

The folder is built beside the output under a temporary name, checked (reloaded by plain transformers and, with
--onnx, by ONNX Runtime, then run on the run's test texts and compared with the run's predictions.jsonl), and only
then moved into place. A failed check, an error or Ctrl-C leaves nothing half-written. With --overwrite, an earlier
export in the folder is replaced file by file (the names its export.json lists); nothing else there is touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ...analysis.run_files import read_json, read_jsonl
from ...errors import UserError
from ...layout import PREDICTIONS, RUN_CONFIG
from ...utils import signals
from ...utils.io import write_json, atomic_write_text
from .run_choice import ChosenRun, choose_run

log = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
CARD_FILE = "README.md"
# Largest |p_export - p_run| over the test set allowed, by how the run predicted. fp32: the same arithmetic up to
# summation order and padding (1e-6 measured); ONNX Runtime fuses operations (1e-6..1e-5 measured). bf16/fp16: the
# run predicted under autocast, the export is fp32, so probabilities differ by the low precision's rounding.
TOLERANCE = {"fp32": {"transformers": 1e-4, "onnx": 1e-3}, "reduced": {"transformers": 5e-2, "onnx": 5e-2}}


def check_output(output: Path, overwrite: bool) -> list[str]:
    """The names an earlier export wrote in `output` (to replace), or [] for a new or empty folder; refuses a
    folder that is not an export of ours, and an export without --overwrite."""
    if output.exists() and not output.is_dir():
        raise UserError(f"--output '{output}' is a file; give a folder")
    if not output.is_dir() or not any(output.iterdir()):
        return []
    marker = output / EXPORT_FILE
    if not marker.is_file():
        raise UserError(f"--output '{output}' exists and holds files that no export wrote; choose a new or empty "
                        "folder (--overwrite only replaces an earlier export)")
    if not overwrite:
        raise UserError(f"--output '{output}' holds an earlier export; add --overwrite to replace it (only the files "
                        "that export wrote)")
    try:
        files = read_json(marker)["files"]
    except (KeyError, TypeError, UserError):
        raise UserError(f"'{marker}' is damaged (no list of the files export wrote); remove the folder by hand") from None
    return [f for f in files if isinstance(f, str) and "/" not in f and f not in ("", ".", "..")]


def _precision(chosen: ChosenRun) -> str:
    env = chosen.record.environment or {}
    return "reduced" if env.get("precision") in ("bf16", "fp16") else "fp32"


def compare_predictions(probs: np.ndarray, reference: np.ndarray, tolerance: float) -> dict:
    """Label agreement and the largest probability difference; a disagreement counts only where the run's two
    likeliest classes are further apart than twice the tolerance (a near-tie may flip within it)."""
    diff = np.abs(probs - reference)
    top2 = np.sort(reference, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > 2 * tolerance
    agree = probs.argmax(1) == reference.argmax(1)
    return {"label_agreement": float(agree.mean()), "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()), "tolerance": tolerance,
            "passed": bool(diff.max() <= tolerance and agree[decisive].all())}


def _reference(chosen: ChosenRun) -> tuple[list[dict], list[str], np.ndarray]:
    path = chosen.folder / PREDICTIONS
    if not path.is_file():
        raise UserError(f"'{chosen.folder}' has no {PREDICTIONS}: the export cannot be checked against the run")
    rows = read_jsonl(path)
    labels = list(chosen.record.labels)
    try:
        reference = np.array([[float(r["probabilities"][name]) for name in labels] for r in rows])
        texts = [str(r["text"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"'{path}' lacks the texts or probabilities the check needs (written by an older version?); "
                        "rerun the run") from None
    return rows, texts, reference


def _saved_model(chosen: ChosenRun) -> Path:
    saved = chosen.record.saved_model
    if not saved:
        raise UserError(f"'{chosen.folder}' has no saved model: train with save_model: true to export it")
    path = Path(saved["path"])
    beside = chosen.folder / "model"
    return path if path.is_dir() else beside if beside.is_dir() else path


def _verdict(chosen: ChosenRun) -> str | None:
    """The comparison's verdict on this run's method: its own against the reference, or, for the reference, every
    method's against it."""
    if chosen.comparison is None or not (chosen.comparison / "comparison.json").is_file():
        return None  # a run of its own, or a comparison still running (serving: true times it before the report)
    cmp = read_json(chosen.comparison / "comparison.json")
    method = chosen.record.method
    texts = [c["primary"]["verdict"]["text"] for c in cmp.get("comparisons", {}).values() if c.get("a") == method]
    texts = texts or [c["primary"]["verdict"]["text"] for c in cmp.get("comparisons", {}).values()
                      if c.get("b") == method]
    return " ".join(texts) or None


def _build(chosen: ChosenRun, work: Path, merge_adapter: bool, onnx: bool) -> dict:
    """Everything export writes, into `work`: the deployable model, ONNX, export.json and the model card."""
    import torch

    from ...evaluation.predict import predict_texts
    from ...models.export import (ONNX_FILE, OnnxClassifier, OnnxUnsupported, export_onnx, load_export, predict_onnx,
                                  write_deployable)

    rows, texts, reference = _reference(chosen)
    written = write_deployable(_saved_model(chosen), work, merge_adapter)
    merged_or_plain = written["merged"] or not written["is_peft"]
    if written["not_merged"]:
        log.warning("%s: %s; exported the base reference plus the adapter (load it with peft)", chosen.record.method,
                    written["not_merged"])
    signals.checkpoint()
    log.info("checking the export on the run's %d test texts", len(texts))
    model, tokenizer = load_export(work, merged_or_plain)  # what a user does: from the folder, offline
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    if [id2label.get(i) for i in range(len(chosen.record.labels))] != list(chosen.record.labels):
        raise UserError(f"the exported model names its classes {id2label}, not the run's {chosen.record.labels}")
    precision = _precision(chosen)
    from ...training.progress import bars_enabled  # training/ loads torch: not before a bad --run is answered

    bar = "check (transformers)" if bars_enabled() else None  # minutes for RoBERTa-base on a CPU: show progress
    checks = {"transformers": compare_predictions(predict_texts(model, tokenizer, texts, written["max_length"],
                                                                bar=bar),
                                                  reference, TOLERANCE[precision]["transformers"])}
    signals.checkpoint()
    onnx_info = onnx_inputs = None
    if onnx:
        log.info("writing the ONNX graph (torch.onnx dynamo exporter)")
        start = time.perf_counter()
        try:
            onnx_inputs = export_onnx(model, tokenizer, work / ONNX_FILE, written["max_length"])
        except OnnxUnsupported as exc:
            log.warning("%s; exported the transformers folder only", exc)
            onnx_info = {"skipped": str(exc)}
        else:
            seconds = time.perf_counter() - start
            graph = OnnxClassifier(work / ONNX_FILE, tokenizer, written["max_length"], torch.get_num_threads())
            checks["onnx"] = compare_predictions(predict_onnx(graph, texts, bar=bar and "check (ONNX Runtime)"),
                                                 reference, TOLERANCE[precision]["onnx"])
            onnx_info = {"file": ONNX_FILE, "inputs": onnx_inputs, "export_seconds": round(seconds, 1),
                         "bytes": sum(p.stat().st_size for p in work.glob(ONNX_FILE + "*"))}
    tolerance_note = (
        "Tolerance: the run predicted in fp32, as the export does; differences come from summation order and "
        "padding (and, for ONNX Runtime, fused operations)." if precision == "fp32" else
        f"Tolerance: the run predicted under {(chosen.record.environment or {}).get('precision')} autocast and the "
        "export is fp32, so probabilities differ by that precision's rounding; the looser tolerance says so.")
    check = {"examples": len(texts), "precision_of_run": precision, "runtimes": checks,
             "tolerance_note": tolerance_note}
    info = {"run": str(chosen.folder.resolve()), "method": chosen.record.method, "seed": chosen.record.seed,
            "choice": chosen.why, "merged": written["merged"], "not_merged": written["not_merged"],
            "is_peft": written["is_peft"], "labels": list(chosen.record.labels), "max_length": written["max_length"],
            "base_model": card_base_name(written["meta"]["base_model"]),
            "model_bytes": written["bytes"], "onnx": onnx_info if onnx_info and "file" in onnx_info else None,
            "onnx_skipped": (onnx_info or {}).get("skipped"), "onnx_inputs": onnx_inputs, "check": check,
            "versions": {"torch": torch.__version__, **_versions()}}
    from ...analysis.model_card import model_card  # scipy and sklearn: not before a bad --run is answered

    run_config = _run_config(chosen)
    atomic_write_text(work / CARD_FILE, model_card(chosen.record, run_config, rows, info, _verdict(chosen),
                                                   info["base_model"]))
    info["files"] = sorted(p.name for p in work.iterdir()) + [EXPORT_FILE]
    write_json(work / EXPORT_FILE, info)
    return info


def card_base_name(model_name: str) -> str:
    """The base as the card names it: the hub id (the embedded MiniLM's too), or a local folder's name."""
    from ...models.resolve import EMBEDDED_MINILM
    from ...models.saving import EMBEDDED_HUB_ID

    if model_name == EMBEDDED_MINILM:
        return EMBEDDED_HUB_ID
    return Path(model_name).name if Path(model_name).is_dir() else model_name


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("transformers", "peft", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _run_config(chosen: ChosenRun) -> dict:
    import yaml

    path = chosen.folder / RUN_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, yaml.YAMLError):
        data = {}
    return data if isinstance(data, dict) else {}


def _install(work: Path, output: Path, old_files: list[str]) -> None:
    """Move the checked export into `output`: the earlier export's files go first, nothing else is touched."""
    if not output.exists():
        os.replace(work, output)
        return
    for name in old_files:
        target = output / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for item in work.iterdir():
        if item.name != EXPORT_FILE:
            os.replace(item, output / item.name)
    os.replace(work / EXPORT_FILE, output / EXPORT_FILE)  # last: marks the export complete
    work.rmdir()


def export_run(run: str | Path, output: str | Path, method: str | None = None, seed: int | None = None,
               merge_adapter: bool = True, onnx: bool = False, overwrite: bool = False) -> dict:
    """Export a saved run (a run folder, or a comparison folder with `method` and optionally `seed`) to `output`."""
    output = Path(output)
    chosen = choose_run(run, method, seed)
    _saved_model(chosen)  # a run without a model answers before anything heavy is imported
    old_files = check_output(output, overwrite)
    log.info("exporting %s seed %s (%s) from %s", chosen.record.method, chosen.record.seed, chosen.why, chosen.folder)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = output.parent / f".{output.name}.export-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        info = _build(chosen, work, merge_adapter, onnx)
        failed = {k: c for k, c in info["check"]["runtimes"].items() if not c["passed"]}
        if failed:
            detail = "; ".join(f"{k}: largest probability difference {c['max_abs_diff']:.2e} (tolerance "
                               f"{c['tolerance']:g}), label agreement {c['label_agreement']:.2%}"
                               for k, c in failed.items())
            raise UserError(f"the export does not reproduce the run's predictions ({detail}); nothing was kept")
        _install(work, output, old_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info
