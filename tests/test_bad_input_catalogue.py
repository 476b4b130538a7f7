"""Bad input as a new user would type it: one line on stderr, exit status 2, nothing left that breaks the next run."""

import gzip
import os
import shutil
from pathlib import Path

import pytest

from finetune_compare.config import method_override_keys

from finetune_compare.cli import main
from finetune_compare.data.loading import EMBEDDED_DIR


def _local(tmp_path, rel: str | None = None, raw: bytes | None = None) -> Path:
    root = tmp_path / "data"
    shutil.copytree(EMBEDDED_DIR, root)
    if rel:
        path = root / rel
        path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return root


def _yaml(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


BAD_JSON = b'{"text": "a", "label": 0}\n{bad'
LATIN1 = '{"text": "caf\xe9", "label": 0}'.encode("latin-1")
LABEL_7 = b'{"text": "ok", "label": 7}'
BLANK = b'{"text": "  ", "label": 1}'


def _file(t) -> Path:
    (t / "f").write_text("x")
    return t / "f"


def _loop(t) -> Path:
    (t / "a").symlink_to(t / "b")
    (t / "b").symlink_to(t / "a")
    return t / "a"


def _binary(t) -> Path:
    (t / "j.log").write_bytes(b"\xc3\x28\xa0\xa1\n")
    return t / "j.log"


def _marker(t, text: str) -> Path:
    (t / "o").mkdir()
    (t / "o" / "experiment.yaml").write_text(text)
    return t / "o"


def _local_dir(t, rel, raw):
    return "data_dir=" + str(_local(t, rel, raw))


EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "own-data")
OWN = ["--set", "data_source=files", "--set", f"train_file={EXAMPLE}/train.csv", "--set",
       f"test_file={EXAMPLE}/test.csv"]


def _csv(t) -> Path:
    (t / "t.csv").write_text("review,sentiment\nfine,positive\nmeh,neutral\n", encoding="utf-8")
    return t / "t.csv"


def _text(t, name: str, text: str) -> Path:
    (t / name).write_text(text, encoding="utf-8")
    return t / name


OWN_COLUMNS = [*OWN, "--set", "text_column=review", "--set", "label_column=sentiment"]
INT_LABELS = "text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(40)) + "an unlabelled text,\n"


SMALL = ["--set", "samples_per_class=70", "--set", "test_samples_per_class=10", "--set", "data_source=embedded"]

# (id, argv builder, exact expected stderr line with {tmp} for tmp_path)
CASES = [
    ("malformed-yaml", lambda t, m: ["--mode", "data", "--config", _yaml(t, "lora_r: [8\n")],
     "error: config file '{tmp}/cfg.yaml' is not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
    ("unknown-key", lambda t, m: ["--mode", "data", "--config", _yaml(t, "num_epoch: 3\n")],
     "error: unknown config file '{tmp}/cfg.yaml' key 'num_epoch'; did you mean 'num_epochs'?"),
    ("wrong-type", lambda t, m: ["--mode", "data", "--config", _yaml(t, "batch_size: sixteen\n")],
     "error: config key 'batch_size': expected an integer, got 'sixteen' (str)"),
    ("impossible-rank", lambda t, m: ["--mode", "data", "--set", "lora_r=0"], "error: config key 'lora_r': must be >= 1, got 0"),
    ("impossible-fraction", lambda t, m: ["--mode", "data", "--set", "val_fraction=1.5"],
     "error: config key 'val_fraction': must be < 1, got 1.5"),
    ("negative-lr", lambda t, m: ["--mode", "data", "--set", "lora_learning_rate=-1e-4"],
     "error: config key 'lora_learning_rate': must be > 0, got -0.0001"),
    ("unknown-source", lambda t, m: ["--mode", "data", "--set", "sources=[imdb,yelp]"],
     "error: config key 'sources': 'yelp' is not allowed; allowed: imdb, sst5, tweeteval"),
    ("conflicting-options", lambda t, m: ["--mode", "lora", "--method", "both"],
     "error: lora does not take --method both (see: finetune-compare lora --help)"),
    ("trials-outside-optimize", lambda t, m: ["--mode", "compare", "--trials", "5"],
     "error: compare does not take --trials 5 (see: finetune-compare compare --help)"),
    ("missing-config", lambda t, m: ["--mode", "data", "--config", str(t / "nope.yaml")],
     "error: config file '{tmp}/nope.yaml' does not exist or is not a file (packaged presets, usable by name: default, "
     "own-data, quickstart, reference-sweep, study-minilm, study-regret, study-tuned)"),
    ("non-utf8-config", lambda t, m: ["--mode", "data", "--config", _yaml(t, "model_name: caf\xe9\n".encode("latin-1"))],
     "error: config file '{tmp}/cfg.yaml' is not valid UTF-8 (invalid continuation byte at byte 15)"),
    ("local-without-dir", lambda t, m: ["--mode", "data", "--set", "data_source=local"],
     "error: config key 'data_dir': required when data_source is 'local' (e.g. ../shared/data)"),
    ("missing-data-dir", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set", f"data_dir={t}/none"],
     "error: data_dir '{tmp}/none' does not exist or is not a directory; expected layout: <data_dir>/imdb/{{train,test}}.jsonl.gz, sst5/{{train,validation,test}}.jsonl.gz, tweeteval_sentiment/{{train,validation,test}}.jsonl.gz"),
    ("missing-data-file", lambda t, m: (lambda root: (root / "sst5" / "test.jsonl.gz").unlink() or
                                        ["--mode", "data", "--set", "data_source=local", "--set", f"data_dir={root}"])(_local(t)),
     "error: missing file {tmp}/data/sst5/test.jsonl.gz for source 'sst5' split 'test'; expected layout: <data_dir>/sst5/{{train,validation,test}}.jsonl.gz with lines {{\"text\": ..., \"label\": ...}}"),
    ("malformed-json", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set",
                                     _local_dir(t, "imdb/test.jsonl.gz", BAD_JSON)],
     "error: {tmp}/data/imdb/test.jsonl.gz:2: malformed JSON line (Expecting property name enclosed in double quotes at column 2)"),
    ("non-utf8-data", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set",
                                    _local_dir(t, "imdb/test.jsonl.gz", LATIN1)],
     "error: {tmp}/data/imdb/test.jsonl.gz: not valid UTF-8 (invalid continuation byte); save the file as UTF-8"),
    ("label-out-of-range", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set",
                                         _local_dir(t, "sst5/train.jsonl.gz", LABEL_7)],
     "error: {tmp}/data/sst5/train.jsonl.gz:1: label 7 is not in sst5's scheme {{0: very negative, 1: negative, 2: neutral, 3: positive, 4: very positive}}"),
    ("empty-texts-only", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set",
                                       _local_dir(t, "tweeteval_sentiment/test.jsonl.gz", BLANK)],
     "error: source 'tweeteval' split 'test': every text is empty after cleaning"),
    ("empty-split", lambda t, m: ["--mode", "data", "--set", "data_source=local", "--set",
                                  _local_dir(t, "imdb/train.jsonl.gz", b"")],
     "error: {tmp}/data/imdb/train.jsonl.gz: split 'train' of source 'imdb' has no rows"),
    ("class-missing-from-sources", lambda t, m: ["--mode", "data", "--set", "sources=[imdb]"] + SMALL,
     "error: train: no 'neutral' examples in sources ['imdb']; add a source that has them"),
    ("dataset-smaller-than-batch", lambda t, m: ["--mode", "full", "--set", f"model_name={m}", "--set", "samples_per_class=40",
                                                 "--set", "test_samples_per_class=5", "--set", "data_source=embedded",
                                                 "--set", "batch_size=128", "--set", "val_fraction=0.25",
                                                 "--output-dir", str(t / "o")],
     "error: only 90 training examples for batch_size 128: raise samples_per_class or lower batch_size"),
    ("model-path-missing", lambda t, m: ["--mode", "full", "--set", f"model_name={t}/no-model"] + SMALL,
     "error: model '{tmp}/no-model' is not an existing model directory nor a valid hub id; use a hub id like cardiffnlp/twitter-roberta-base-sentiment-latest, a local directory, or embedded-minilm"),
    ("model-dir-without-config", lambda t, m: (t / "empty").mkdir() or ["--mode", "full", "--set", f"model_name={t}/empty"] + SMALL,
     "error: model directory '{tmp}/empty' has no config.json; it is not a saved transformers model"),
    ("target-modules-match-nothing", lambda t, m: ["--mode", "lora", "--set", f"model_name={m}", "--set",
                                                   "lora_target_modules=[q_proj]", "--output-dir", str(t / "o")] + SMALL,
     "error: lora_target_modules entry 'q_proj' matches no layer of the encoder; layer names available: dense, key, position_embeddings, query, token_type_embeddings, value, word_embeddings"),
    ("output-path-is-a-file", lambda t, m: (t / "f").write_text("x") and ["--mode", "data", "--output-dir", str(t / "f")],
     "error: --output-dir '{tmp}/f' exists and is a file, not a directory"),
    ("unknown-set-key", lambda t, m: ["--mode", "data", "--set", "lora_dropuot=0.1"],
     "error: unknown --set key 'lora_dropuot'; did you mean 'lora_dropout'?"),
    ("bad-search-space", lambda t, m: ["--mode", "optimize", "--method", "full", "--trials", "1", "--output-dir", str(t / "o"),
                                       "--set", "search_space={full: {learning_rate: {type: float, low: 1, high: 0}}}"],
     "error: search_space.full.learning_rate: needs numbers low < high, got low=1 high=0"),
    ("bad-method-override", lambda t, m: ["--mode", "data", "--set", "method_overrides={lora: {lora_rank: 4}}"],
     "error: unknown method_overrides.lora key 'lora_rank'; did you mean 'lora_r'?"),
    ("method-override-data-key", lambda t, m: ["--mode", "data", "--set",
                                                "method_overrides={lora: {samples_per_class: 100}}"],
     "error: config key 'method_overrides.lora.samples_per_class': 'samples_per_class' cannot differ between methods "
     "(data, model, output and experiment keys are shared by every method of a comparison, so the runs stay paired); "
     "allowed per method: {allowed}"),  # the training keys and every registered method's settings
    ("empty-output-dir", lambda t, m: ["--mode", "data", "--output-dir", ""],
     "error: config key 'output_dir': must not be empty"),
    ("output-dir-under-a-file", lambda t, m: ["--mode", "data", "--output-dir", str(_file(t) / "sub")],
     "error: output directory '{tmp}/f/sub' cannot be created: '{tmp}/f' is a file"),
    ("target-matches-nothing", lambda t, m: ["--mode", "lora", "--set", f"model_name={m}", "--set",
                                             "lora_target_modules=[q_proj]"] + SMALL,
     "error: lora_target_modules entry 'q_proj' matches no layer of the encoder; layer names available: dense, key, "
     "position_embeddings, query, token_type_embeddings, value, word_embeddings"),
    ("lora-r-too-large", lambda t, m: ["--mode", "lora", "--set", f"model_name={m}", "--set", "lora_r=4096"] + SMALL,
     "error: lora_r 4096 is larger than layer 'bert.encoder.layer.0.attention.self.query' (32 wide): a low-rank update "
     "cannot have a higher rank than the layer; use lora_r <= 32"),
    ("bad-override-value", lambda t, m: ["--mode", "data", "--set", "method_overrides={lora: {lora_r: 0}}"],
     "error: method_overrides.lora: config key 'lora_r': must be >= 1, got 0"),
    ("seed-out-of-range", lambda t, m: ["--mode", "data", "--set", "seed=4294967296"],
     "error: config key 'seed': seed + num_runs - 1 = 4294967298 must be < 2^32 (numpy's seed range)"),
    ("num-runs-huge", lambda t, m: ["--mode", "data", "--set", "num_runs=1000000000000"],
     "error: config key 'num_runs': must be <= 10000, got 1000000000000"),
    ("trials-huge", lambda t, m: ["--mode", "optimize", "--trials", "1000000000"],
     "error: --trials must be between 0 and 100,000, got 1000000000"),
    ("save-dir-is-a-file", lambda t, m: ["--mode", "full", "--set", f"model_name={m}", "--set", "save_model=true",
                                         "--set", f"save_dir={_file(t)}"] + SMALL,
     "error: config key 'save_dir': '{tmp}/f' is a file, so models cannot be saved there"),
    ("validation-too-small", lambda t, m: ["--mode", "data", "--set", "data_source=embedded",
                                           "--set", "samples_per_class=15"],
     "error: the validation split is too small to select a model on (2 examples; negative: 0, neutral: 2, positive: 0); "
     "it needs >= 2 per class and >= 20 in all: raise samples_per_class (now 15) or val_fraction (now 0.1)"),
    ("corrupt-experiment-yaml", lambda t, m: ["--mode", "data", "--output-dir", str(_marker(t, "a: [1"))] + SMALL,
     "error: '{tmp}/o/experiment.yaml' is unreadable or corrupt (ParserError); it marks the folder's results: "
     "restore it, or delete the folder's results and run again"),
    ("non-mapping-experiment-yaml", lambda t, m: ["--mode", "data", "--output-dir", str(_marker(t, "- 1\n- 2\n"))]
     + SMALL, "error: '{tmp}/o/experiment.yaml' is corrupt (expected a mapping of config keys, got list); restore "
              "it, or delete the folder's results and run again"),
    ("journal-folder-not-creatable", lambda t, m: ["--mode", "optimize", "--trials", "0", "--storage",
                                                   f"journal:{_file(t)}/j.log"],
     "error: cannot use journal storage '{tmp}/f/j.log': '{tmp}/f' is a file"),
    ("bf16-base-without-bf16-compute", lambda t, m: ["--mode", "lora", "--set", f"model_name={m}", "--set",
                                                     "mixed_precision=no", "--set", "base_weights_dtype=bf16"] + SMALL,
     "error: base_weights_dtype bf16 needs bf16 compute, but training runs in fp32: set mixed_precision: bf16 (or auto "
     "with prefer_memory_over_speed: true on a CPU with bf16, or a GPU with bf16), or base_weights_dtype: fp32"),
    ("fp16-on-cpu", lambda t, m: ["--mode", "full", "--set", f"model_name={m}", "--set", "mixed_precision=fp16",
                                  "--output-dir", str(t / "o")] + SMALL,
     "error: config key 'mixed_precision': fp16 needs a CUDA GPU; on CPU use bf16, auto or no"),
    ("predict-without-model", lambda t, m: ["--mode", "predict", "--text", "hi"],
     "error: the following arguments are required: --model (see: finetune-compare predict --help)"),
    ("serving-without-saved-models", lambda t, m: ["--mode", "compare", "--set", "serving=true"],
     "error: config key 'serving': exports each method's saved model; needs save_model: true"),
    ("export-without-output", lambda t, m: ["export", "--run", str(t)],
     "error: the following arguments are required: --output (see: finetune-compare export --help)"),
    # your own data (data_source: files): the example files with the wrong column, no test file, an unseen label
    ("own-data-missing-column", lambda t, m: ["--mode", "data", *OWN],
     "error: train_file '" + EXAMPLE + "/train.csv': no column 'text' (text_column); the columns found are: review, "
     "sentiment, domain"),
    ("own-data-without-test-file", lambda t, m: ["--mode", "data", "--set", "data_source=files", "--set",
                                                 f"train_file={EXAMPLE}/train.csv"],
     "error: config key 'test_file': required when data_source is 'files' (both methods are scored on it)"),
    ("own-data-unseen-test-label", lambda t, m: ["--mode", "data", *OWN, "--set", "text_column=review", "--set",
                                                 "label_column=sentiment", "--set", f"test_file={_csv(t)}"],
     "error: test_file '{tmp}/t.csv': label 'neutral' (1 rows) never occurs in the training data, so no model can "
     "learn it; the training classes are: negative, positive"),
    ("own-data-preset-key", lambda t, m: ["--mode", "data", *OWN, "--set", "sources=[imdb]"],
     "error: config key 'sources': belongs to the sentiment preset; your own data (data_source: files) does not read "
     "it"),
    # the third reliability pass (issue 26)
    ("own-data-one-row-test-file", lambda t, m: ["--mode", "data", *OWN_COLUMNS, "--set",
                                                 f"test_file={_text(t, 'one.csv', 'review,sentiment' + chr(10) + 'bad film,negative' + chr(10))}"],
     "error: the test set is too small to score the methods on (1 examples; negative: 1, positive: 0); it needs >= 2 "
     "per class and >= 10 in all: add test examples of the short classes to the test file/split"),
    ("own-data-header-only-test-file", lambda t, m: ["--mode", "data", *OWN_COLUMNS, "--set",
                                                     f"test_file={_text(t, 'h.csv', 'review,sentiment' + chr(10))}"],
     "error: config key 'test_file': '{tmp}/h.csv' has no rows (a header only?)"),
    ("own-data-missing-integer-label", lambda t, m: ["--mode", "data", "--set", "data_source=files", "--set",
                                                     f"train_file={_text(t, 'i.csv', INT_LABELS)}", "--set",
                                                     f"test_file={t / 'i.csv'}"],
     "error: train_file '{tmp}/i.csv': 1 row(s) have no label in column 'label' (first: row 41); label every row or "
     "drop those rows"),
    ("method-override-scalar-in-a-config-layer", lambda t, m: ["--mode", "data", "--config", "configs/quickstart.yaml",
                                                               "--config", _yaml(t, "method_overrides:\n  lora: 5\n")],
     "error: config file '{tmp}/cfg.yaml': config key 'method_overrides.lora': expected a mapping of config keys to "
     "values, got 5 (int)"),
    ("num-epochs-huge", lambda t, m: ["--mode", "data", "--set", "num_epochs=1000000000000"],
     "error: config key 'num_epochs': must be <= 1000, got 1000000000000"),
    ("per-method-batch-larger-than-the-data", lambda t, m: ["--mode", "compare", "--set", f"model_name={m}", "--set",
                                                            "method_overrides={lora: {batch_size: 4096}}"] + SMALL,
     "error: only 190 training examples for method_overrides.lora.batch_size 4096: raise samples_per_class or lower "
     "method_overrides.lora.batch_size"),
    ("sweep-points-sharing-a-folder", lambda t, m: ["--mode", "sweep", "--sweep", "model_name=/m/a/b,/m/a_b"] + SMALL,
     "error: sweep points {{'model_name': '/m/a/b'}} and {{'model_name': '/m/a_b'}} would share the point folder "
     "'model_name=_m_a_b'; give the values names that differ in letters, digits, '.', '-' or '_'"),
    ("sweep-point-rank-too-large", lambda t, m: ["--mode", "sweep", "--set", f"model_name={m}", "--sweep",
                                                 "lora_r=4,4096"] + SMALL,
     "error: lora_r 4096 is larger than layer 'bert.encoder.layer.0.attention.self.query' (32 wide): a low-rank update "
     "cannot have a higher rank than the layer; use lora_r <= 32"),
    ("data-into-a-sweep-folder", lambda t, m: ["--mode", "data", "--output-dir",
                                               str(_marker(t, "sweep_grid: [samples_per_class]\n"))] + SMALL,
     "error: output directory '{tmp}/o' holds a sweep (grid: samples_per_class); only `finetune-compare sweep` adds "
     "to it, and `finetune-compare report --results {tmp}/o` rebuilds its report: use another --output-dir for this "
     "command"),
    ("device-not-allowed", lambda t, m: ["--mode", "data", "--set", "device=gpu"],
     "error: config key 'device': 'gpu' is not allowed; allowed: auto, cpu, cuda, cuda:N"),
    ("journal-of-binary-bytes", lambda t, m: ["--mode", "optimize", "--trials", "0", "--storage",
                                              f"journal:{_binary(t)}"] + SMALL,
     "error: cannot use journal storage '{tmp}/j.log': it is not an Optuna journal file (UnicodeDecodeError while "
     "reading it); choose another --storage, or delete it if it is a damaged journal of ours (its trials are lost)"),
    ("output-dir-symlink-loop", lambda t, m: ["--mode", "data", "--output-dir", str(_loop(t) / "sub")] + SMALL,
     "error: output directory '{tmp}/a/sub' cannot be created: '{tmp}/a' is a symbolic link loop"),
    ("budget-fraction-of-a-step", lambda t, m: ["--mode", "full", "--set", f"model_name={m}", "--set",
                                                "budget_unit=steps", "--set", "budget=2.5"] + SMALL,
     "error: config key 'budget': budget_unit 'steps' counts whole optimizer steps; got 2.5 (use 2 or 3)"),
]


@pytest.mark.parametrize("case_id, build, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, build, expected, tmp_path, tiny_bert, capsys):
    import torch

    if case_id == "fp16-on-cpu" and torch.cuda.is_available():
        pytest.skip("fp16 is valid on this machine")
    argv = build(tmp_path, tiny_bert)
    if "--output-dir" not in argv:
        argv += ["--output-dir", str(tmp_path / "out")]
    try:
        code = main(argv + ["--set", "tracking.mlflow=false", "--set", "tracking.wandb=false"])
    except SystemExit as exc:  # argparse's errors leave through our one-line error()
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    allowed = ", ".join(sorted(method_override_keys()))
    assert {"lora_r", "vera_target_modules", "num_epochs", "weight_decay"} <= method_override_keys()
    assert err.splitlines()[-1] == expected.format(tmp=tmp_path, allowed=allowed), err
    assert "Traceback" not in err


def test_catalogue_is_big_enough():
    assert len(CASES) >= 25


@pytest.mark.slow
def test_failed_command_does_not_block_the_corrected_one(tmp_path, tiny_bert, capsys):
    out = str(tmp_path / "o")
    common = ["--mode", "full", "--output-dir", out, "--set", "num_epochs=1", "--set", "mixed_precision=no",
              "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false"] + SMALL
    assert main(common + ["--set", "model_name=./typo/model"]) == 2
    assert main(common + ["--set", f"model_name={tiny_bert}"]) == 0


def _foreign_folder(root: Path) -> dict[Path, bytes]:
    """Another tool's files under the names our results use, plus one of its own."""
    files = {root / "runs" / "tensorboard" / "events.out": b"tb", root / "plots" / "figure1.png": b"png",
             root / "optimize" / "notes.md": b"notes", root / "report.md": b"# theirs", root / "cache" / "x": b"c",
             root / "keep.txt": b"k"}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.mark.parametrize("model_name", ["./typo-model", None])
def test_overwrite_never_deletes_foreign_files(tmp_path, tiny_bert, capsys, model_name):
    """Whether the command would otherwise fail (bad model) or succeed: foreign files survive, exit 2."""
    out = tmp_path / "theirs"
    files = _foreign_folder(out)
    argv = ["--mode", "full", "--output-dir", str(out), "--overwrite", "--set", f"model_name={model_name or tiny_bert}",
            "--set", "num_epochs=1", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false"] + SMALL
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    if model_name is None:
        assert err == (f"error: output directory '{out}' already holds 'runs', 'plots', 'optimize', 'cache', "
                       "'report.md' without an experiment.yaml: they were not written by finetune-compare, so it will "
                       "neither use nor delete them (--overwrite included); choose a new or empty --output-dir")
    assert {p: p.read_bytes() for p in files} == files
    assert not (out / "experiment.yaml").exists()


@pytest.mark.slow
def test_overwrite_deletes_only_after_validation(tmp_path, tiny_bert, capsys):
    out = tmp_path / "o"
    common = ["--mode", "full", "--output-dir", str(out), "--set", "num_epochs=1", "--set", "mixed_precision=no",
              "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false"] + SMALL
    assert main(common + ["--set", f"model_name={tiny_bert}"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # a different config with --overwrite, failing validation: our own results are kept too
    assert main(common + ["--overwrite", "--set", "model_name=./typo-model"]) == 2
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


# ---- the third reliability pass (issue 26): behaviours beyond one error line ---------------------------------

def test_data_never_deletes_an_interrupted_run_of_another_configuration(tmp_path, capsys):
    """Training progress is a result too: without --overwrite no command removes a run folder, resumable or not."""
    out = tmp_path / "own"
    base = ["--mode", "data", "--config", "configs/own-data.yaml", "--output-dir", str(out)]
    assert main(base) == 0
    checkpoint = out / "runs" / "lora" / "seed-42" / "checkpoints" / "checkpoint-8" / "trainer_state.json"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("{}")
    capsys.readouterr()
    assert main(base + ["--set", "max_length=16"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: output directory '{out}' holds results of a different configuration "
                           "(max_length: 128 -> 16); use another --output-dir, or --overwrite to delete those results")
    assert checkpoint.is_file() and "--overwrite: removed" not in err


def test_a_folder_with_only_caches_is_taken_without_claiming_an_overwrite(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    out = tmp_path / "own"
    base = ["--mode", "data", "--config", "configs/own-data.yaml", "--output-dir", str(out)]
    assert main(base) == 0
    assert main(base + ["--set", "max_length=16"]) == 0  # nothing but our summary and marker: replaced
    assert "--overwrite" not in caplog.text and "held no runs or results" in caplog.text


def test_a_non_finite_score_is_a_damaged_run(tmp_path, capsys):
    import json

    import numpy as np

    from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment

    y, source, preds = simulate_predictions(SCENARIOS["test-noise"], np.random.default_rng(0), 3, 0.0, 300)
    folder = write_experiment(tmp_path / "cmp", y, source, preds)
    path = folder / "runs" / "lora" / "seed-43" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["test"]["macro_f1"] = float("nan")
    path.write_text(json.dumps(metrics))  # json writes NaN, and reads it back
    assert main(["report", "--results", str(folder)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: '{path}' is corrupt (test score macro_f1 is nan, not a number in [0, 1]); delete that run's folder "
        "and rerun the same command to retrain it, then rebuild the report")
    assert not (folder / "comparison.json").exists()


def _saved_model(tmp_path, tiny_bert, meta_labels):
    import json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path / "model"
    AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(folder))
    (folder / "finetune_compare.json").write_text(json.dumps({
        "method": "full", "peft": False, "base_model": str(tiny_bert), "max_length": 32,
        "num_labels": len(meta_labels), "id2label": {str(i): n for i, n in enumerate(meta_labels)}}))
    return folder


def test_predict_with_metadata_that_does_not_match_the_head(tmp_path, tiny_bert, capsys):
    folder = _saved_model(tmp_path, tiny_bert, ["negative", "neutral", "positive"])
    assert main(["predict", "--model", str(folder), "--text", "what a film"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: '{folder}': finetune_compare.json names 3 classes (negative, neutral, positive) but the model's head "
        "has 2 outputs; the folder mixes files of two models: save the model again")


def test_predict_reads_the_text_column_it_is_told_and_keeps_every_column(tmp_path, tiny_bert, capsys):
    import csv

    folder = _saved_model(tmp_path, tiny_bert, ["negative", "positive"])
    (tmp_path / "in.csv").write_text("id,review\n1,great fun\n2,dull\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(folder), "--input", str(tmp_path / "in.csv"), "--text-column", "review",
                 "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["1", "2"] and rows[0]["review"] == "great fun"
    assert {"label", "p_negative", "p_positive"} <= set(rows[0])
    assert main(["predict", "--model", str(folder), "--input", str(tmp_path / "in.csv")]) == 2
    assert "needs a header with a 'text' column (--text-column), found id, review" in capsys.readouterr().err


def test_predict_output_where_no_file_can_be_made(tmp_path, tiny_bert, capsys):
    folder = _saved_model(tmp_path, tiny_bert, ["negative", "positive"])
    assert main(["predict", "--model", str(folder), "--text", "hi", "--output", "/proc/x.csv"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --output '/proc/x.csv': cannot write in folder '/proc' (")


def test_a_resumed_study_with_another_space_or_metric_is_refused(tmp_path):
    import optuna

    from finetune_compare import Config
    from finetune_compare.errors import UserError
    from finetune_compare.experiments.search.studies import create_study

    cfg = Config(output_dir=str(tmp_path / "o"))
    space = {"lora_r": {"type": "categorical", "choices": [4, 8]}}
    create_study(cfg.search, 0, "lora", tmp_path, space=space)
    with pytest.raises(UserError, match=r"was searched over another space \(lora_r: \{'choices': \[4, 8\], 'type': "
                                        r"'categorical'\} -> \{'choices': \[2, 16\], 'type': 'categorical'\}\)"):
        create_study(cfg.search, 0, "lora", tmp_path, space={"lora_r": {"type": "categorical", "choices": [2, 16]}})
    with pytest.raises(UserError, match="scores trials on validation macro_f1, not accuracy"):
        create_study(cfg.replace(hpo_metric="accuracy").search, 0, "lora", tmp_path, space=space)
    # a study made before the space was recorded: judged by its trials' distributions
    old = optuna.create_study(study_name="old-lora", storage=f"sqlite:///{tmp_path}/old.db", direction="maximize")
    old.add_trial(optuna.trial.create_trial(params={"lora_r": 4}, value=0.5, distributions={
        "lora_r": optuna.distributions.CategoricalDistribution([4, 8])}))
    with pytest.raises(UserError, match=r"searched over another space \(lora_r: \(4, 8\) -> lora_r: \(2, 16\)\)"):
        create_study(cfg.replace(hpo_study_name="old").search, 0, "lora", tmp_path,
                     f"sqlite:///{tmp_path}/old.db", {"lora_r": {"type": "categorical", "choices": [2, 16]}})


def test_a_trial_whose_pid_was_reused_counts_as_dead():
    import os
    import socket

    from finetune_compare.utils.processes import is_dead_local_worker, worker_id

    me = worker_id()
    assert not is_dead_local_worker(me)
    host, pid, start = me.split(":")
    assert is_dead_local_worker(f"{host}:{pid}:{int(start) - 100}")  # same pid, another process's start time
    assert not is_dead_local_worker(f"other-host:{pid}:1")  # other hosts are never judged
    assert not is_dead_local_worker(f"{socket.gethostname()}:{os.getpid()}")  # the old form: by pid alone


def test_report_is_refused_while_a_command_holds_the_folder(tmp_path, capsys):
    import subprocess
    import sys

    import numpy as np

    from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment

    y, source, preds = simulate_predictions(SCENARIOS["test-noise"], np.random.default_rng(0), 3, 0.0, 300)
    folder = write_experiment(tmp_path / "cmp", y, source, preds)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom finetune_compare."
                               "experiments.study.ownership import _lock\n_lock(Path(sys.argv[1]))\nprint('held', flush=True)\ntime.sleep(60)",
                               str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["report", "--results", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: output directory '{folder}' is in use by pid {holder.pid} on ")
        assert not (folder / "comparison.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_cuda_index_selects_that_gpu_before_cuda_starts(monkeypatch):
    import torch

    from finetune_compare.errors import ConfigError
    from finetune_compare.training import device

    monkeypatch.setattr(device, "_physical_gpu_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device.resolve_device("cuda:2") == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert device.resolve_device("cuda:1") == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES=3,5 makes only 2 GPU"):
        device.resolve_device("cuda:2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(ConfigError, match=r"this machine has 4 GPU\(s\) \(cuda:0..cuda:3\)"):
        device.resolve_device("cuda:7")


def test_a_vera_rank_beyond_memory_is_refused_before_training(tmp_path, tiny_bert, capsys):
    """VeRA's rank may exceed a layer's width, so the check is against memory: one line, not the allocator's error."""
    import re

    code = main(["compare", "--set", f"model_name={tiny_bert}", "--set", "methods=[full,vera]", "--set",
                 "vera_r=100000000000", "--output-dir", str(tmp_path / "o"), "--set", "tracking.mlflow=false",
                 "--set", "tracking.wandb=false"] + SMALL)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and re.fullmatch(r"error: vera_r 100000000000 needs [0-9.]+ GiB for VeRA's shared projections, "
                                      r"more than half of the [0-9.]+ GiB of memory available; use vera_r <= [0-9]+",
                                      err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("mode, errno_name, readable, expected", [
    ("predict", "ENOSPC", True, "error: no space left on the device while writing /x/p.csv; free space or choose "
                                "another --output"),
    ("compare", "ENOSPC", True, "error: no space left on the device while writing /x/p.csv; free space or choose "
                                "another --output-dir (finished runs are kept)"),
    ("data", "EACCES", False, "error: cannot read /x/p.csv: Permission denied"),
    ("data", "EACCES", True, "error: cannot write /x/p.csv: Permission denied"),
])
def test_disk_and_permission_errors_name_what_failed(monkeypatch, mode, errno_name, readable, expected):
    import errno

    from finetune_compare import cli

    monkeypatch.setattr(cli.os.path, "exists", lambda p: True)
    monkeypatch.setattr(cli.os, "access", lambda p, m: readable)
    code = getattr(errno, errno_name)
    assert cli._os_error_line(OSError(code, os.strerror(code), "/x/p.csv"), mode) == expected
