"""`finetune-compare predict`: read texts (a .csv column or .jsonl key, 'text' unless --text-column says), classify
them with a saved model, keep every input column, write a .csv or .jsonl (atomically)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from ...errors import UserError
from ...evaluation.predict import predict_texts, prediction_records
from ...models.saving import load_trained, saved_labels
from ...utils.io import atomic_write_text, write_jsonl


def read_input_rows(path: str, text_column: str = "text") -> list[dict]:
    """Rows of a .csv (header with a `text_column` column) or .jsonl (objects with that key); every column is kept.

    'utf-8-sig' accepts files that start with a byte-order mark (Excel writes one).
    """
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--input '{path}' is a folder; give a .csv or .jsonl file")
    if not p.is_file():
        raise UserError(f"--input '{path}' does not exist")
    rows: list[dict] = []
    try:
        if p.suffix == ".csv":
            csv.field_size_limit(sys.maxsize)  # long reviews: the default limit is 131,072 characters
            with p.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or text_column not in reader.fieldnames:
                    raise UserError(f"{path}: needs a header with a '{text_column}' column (--text-column), found "
                                    f"{', '.join(reader.fieldnames or []) or 'no header'}")
                for n, row in enumerate(reader, 2):
                    if not isinstance(row.get(text_column), str):
                        raise UserError(f"{path}:{n}: the row has no '{text_column}' value (fewer cells than the "
                                        "header)")
                    rows.append({k: v for k, v in row.items() if k is not None})
        elif p.suffix == ".jsonl":
            for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), 1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserError(f"{path}:{n}: malformed JSON line ({exc.msg})") from None
                    if not isinstance(obj, dict) or not isinstance(obj.get(text_column), str):
                        raise UserError(f"{path}:{n}: expected an object with a string '{text_column}' "
                                        "(--text-column)")
                    rows.append(obj)
        else:
            raise UserError(f"--input '{path}': expected a .csv or .jsonl file")
    except UnicodeDecodeError:
        raise UserError(f"--input '{path}' is not valid UTF-8") from None
    except csv.Error as exc:
        raise UserError(f"{path}: malformed CSV ({exc})") from None
    except PermissionError:
        raise UserError(f"--input '{path}' cannot be read (permission denied)") from None
    if not rows:
        raise UserError(f"--input '{path}' has no texts")
    return rows


def check_output_file(path: str) -> Path:
    out = Path(path)
    if out.is_dir():
        raise UserError(f"--output '{out}' is a folder; give a file name ending in .csv or .jsonl")
    if out.suffix not in (".csv", ".jsonl"):
        raise UserError(f"--output '{out}': expected a .csv or .jsonl file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"--output '{out}': folder '{parent}' does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"--output '{out}' is not writable")
    try:  # the way the file will be written (a temporary file beside it, then a rename): /proc passes os.access
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"--output '{out}': cannot write in folder '{parent}' ({exc.strerror or exc})") from None
    return out


def predict_rows(model_dir: str, rows: list[dict], text_column: str = "text") -> tuple[list[dict], str]:
    """Each input row with the predicted label and the class probabilities; and the label's column name."""
    texts = [r[text_column] for r in rows]
    model, tokenizer, meta = load_trained(model_dir)
    predictions = prediction_records(texts, predict_texts(model, tokenizer, texts, meta["max_length"]),
                                     saved_labels(meta))
    # every input column is kept (an id can be joined back); a gold 'label' column would clash: 'predicted_label'
    key = "predicted_label" if any("label" in r for r in rows) else "label"
    records = [{**row, key: p["label"], **{k: v for k, v in p.items() if k.startswith("p_")}}
               for row, p in zip(rows, predictions)]
    return records, key


def write_predictions(out: Path, records: list[dict]) -> None:
    if out.suffix == ".jsonl":
        write_jsonl(out, records)
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(out, buf.getvalue())
