"""Your own data: files (CSV, JSON Lines, Parquet) and hub-style dataset folders, labels from the data, and
everything downstream named by those labels; bad input stops with one clear message."""

import csv
import gzip
import json
import os
import random
import shlex
from pathlib import Path

import pytest

from finetune_compare import ComparisonExperiment, Config
from finetune_compare.cli import main
from finetune_compare.data.build import build_data
from finetune_compare.errors import ConfigError, DataError

from ..conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = os.environ.get("FINETUNE_COMPARE_DATA_DIR")
SST5_NAMES = ["very negative", "negative", "neutral", "positive", "very positive"]


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def own(tmp_path, **kw) -> Config:
    return Config(data_source="files", output_dir=str(tmp_path / "out"), **kw)


def build(cfg: Config):
    return build_data(cfg.data, cfg.seed)


def binary_rows(n: int, offset: int = 0) -> list[dict]:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    return [{"body": f"text {i + offset} is {words[i % 6]} {'!' * (i % 3)}", "y": int(i % 6 < 3),
             "shop": ["north", "south"][i % 2]} for i in range(n)]


# --- end to end ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sst5_files(tmp_path_factory):
    """SST-5's fine-grained task as its own train/validation/test CSV files (string labels, 5 classes)."""
    if not DATA_DIR:
        pytest.skip("set FINETUNE_COMPARE_DATA_DIR to a full copy (../shared/data)")
    out = tmp_path_factory.mktemp("sst5-files")
    rng = random.Random(0)
    paths = {}
    for split, n in (("train", 300), ("validation", 100), ("test", 150)):
        rows = [json.loads(line) for line in gzip.open(Path(DATA_DIR) / "sst5" / f"{split}.jsonl.gz", "rt")]
        rng.shuffle(rows)
        paths[split] = write_csv(out / f"{split}.csv", ["sentence", "rating"],
                                 [(r["text"], SST5_NAMES[r["label"]]) for r in rows[:n]])
    return paths


@pytest.mark.slow
def test_sst5_five_classes_end_to_end(sst5_files, tiny_bert, tmp_path):
    cfg = tiny_config(tiny_bert, tmp_path, data_source="files", samples_per_class=None, test_samples_per_class=None,
                      train_file=sst5_files["train"], validation_file=sst5_files["validation"],
                      test_file=sst5_files["test"], text_column="sentence", label_column="rating", val_fraction=0.1,
                      label_names=SST5_NAMES, save_model=True, methods=["full", "lora"])
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    out = Path(cfg.output_dir)
    for method in ("full", "lora"):
        metrics = json.loads((out / "runs" / method / "seed-7" / "metrics.json").read_text())
        assert metrics["labels"] == SST5_NAMES  # the given order, recorded
        assert list(metrics["test"]["per_class"]) == SST5_NAMES
        assert len(metrics["test"]["confusion_matrix"]) == 5 and metrics["test"]["n"] == 150  # the file as it is
        assert "5-way head" in metrics["head"]
        row = json.loads((out / "runs" / method / "seed-7" / "predictions.jsonl").open().readline())
        assert list(row["probabilities"]) == SST5_NAMES
    summary = json.loads((out / "data_summary.json").read_text())
    assert summary["labels"] == SST5_NAMES and summary["sizes"]["validation"] == 100  # the validation file
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["labels"] == SST5_NAMES
    assert comparison["metric_groups"]["per_class"] == [f"f1_{c}" for c in SST5_NAMES]
    report = (out / "report.md").read_text()
    assert "| f1 very negative |" in report and "| split | source | very negative | negative |" in report
    # predict, save and reload: the saved head is named by the data's classes
    predictions = tmp_path / "p.jsonl"
    assert main(["predict", "--model", str(out / "runs" / "lora" / "seed-7" / "model"), "--text", "a fine film",
                 "--output", str(predictions), "--quiet"]) == 0
    record = json.loads(predictions.read_text().splitlines()[0])
    assert record["label"] in SST5_NAMES and sorted(k for k in record if k.startswith("p_")) == sorted(
        f"p_{c}" for c in SST5_NAMES)
    saved = json.loads((out / "runs" / "full" / "seed-7" / "model" / "finetune_compare.json").read_text())
    assert saved["id2label"] == {str(i): c for i, c in enumerate(SST5_NAMES)}


@pytest.mark.slow
def test_binary_jsonl_integer_labels_and_groups_end_to_end(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", binary_rows(160))
    test = write_jsonl(tmp_path / "test.jsonl", binary_rows(60, offset=1000))
    cfg = tiny_config(tiny_bert, tmp_path, data_source="files", samples_per_class=None, test_samples_per_class=None,
                      train_file=train, test_file=test, text_column="body", label_column="y", group_column="shop",
                      label_names=["complaint", "praise"])
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    out = Path(cfg.output_dir)
    metrics = json.loads((out / "runs" / "lora" / "seed-7" / "metrics.json").read_text())
    assert metrics["labels"] == ["complaint", "praise"]  # integer label i is label_names[i]
    assert sorted(metrics["test"]["per_source"]) == ["north", "south"]  # the group column, per group
    assert set(metrics["test"]["per_class"]) == {"complaint", "praise"}
    assert (out / "report.html").is_file() and (out / "plots").is_dir()
    assert not (out / "runs" / "base").exists()  # a new 2-way head: no untrained row


def test_label_order_and_cap(tmp_path):
    rows = [(f"sample text number {i}", ["b", "c", "a"][i % 3]) for i in range(300)]
    train = write_csv(tmp_path / "train.csv", ["text", "label"], rows)
    test = write_csv(tmp_path / "test.csv", ["text", "label"], [(f"other text {i}", "abc"[i % 3]) for i in range(30)])
    bundle = build(own(tmp_path, train_file=train, test_file=test))
    assert bundle.labels == ("a", "b", "c")  # string labels: sorted
    assert len(bundle.train) + len(bundle.validation) == 300 and len(bundle.test) == 30  # no cap by default
    capped = build(own(tmp_path, train_file=train, test_file=test, samples_per_class=70, test_samples_per_class=5))
    assert len(capped.train) + len(capped.validation) == 210 and len(capped.test) == 15
    ordered = build(own(tmp_path, train_file=train, test_file=test, label_names=["c", "b", "a"]))
    assert ordered.labels == ("c", "b", "a")
    assert [ordered.labels[e.label] for e in ordered.test[:3]] == [bundle.labels[e.label] for e in bundle.test[:3]]


def test_leakage_and_empty_texts(tmp_path, caplog):
    rows = [(f"sample text number {i}", "xy"[i % 2]) for i in range(300)] + [("", "x"), ("   ", "y")]
    train = write_csv(tmp_path / "train.csv", ["text", "label"], rows)
    test = write_csv(tmp_path / "test.csv", ["text", "label"],
                     [("Sample text number 4", "x")] + [(f"new one {i}", "xy"[i % 2]) for i in range(9)])
    bundle = build(own(tmp_path, train_file=train, test_file=test))
    texts = {e.text.lower() for e in bundle.train + bundle.validation}
    assert "sample text number 4" not in texts and len(texts) == 299  # the leaked test text left training
    assert bundle.report["leakage"]["data"]["train_rows_removed"] == 1
    assert bundle.report["cleaning"]["data"]["train"]["empty_dropped"] == 2
    assert "2 empty or missing texts dropped" in caplog.text


def test_hub_dataset_folder(tmp_path):
    """`dataset_name` goes through datasets.load_dataset; a local folder of split files stands in for the hub."""
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", binary_rows(300))
    write_jsonl(folder / "test.jsonl", binary_rows(20, offset=500))
    cfg = Config(data_source="hub", dataset_name=str(folder), text_column="body", label_column="y")
    bundle = build(cfg)
    assert bundle.labels == ("0", "1") and len(bundle.test) == 20  # integer labels without names: their values


@pytest.mark.slow
def test_readme_own_data_command_runs(tiny_bert, tmp_path, monkeypatch):
    """The README's command for your own CSV, as written (the tiny model and a short budget swapped in)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in section.splitlines() if x.startswith("finetune-compare compare "))
    argv = shlex.split(line.split("  #")[0])[1:]
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository
    out = tmp_path / "own-data"
    argv = [a if a != "outputs/own-data" else str(out) for a in argv]
    fast = ["model_name=" + tiny_bert, "num_epochs=1", "batch_size=16", "max_length=32", "num_threads=1",
            "tracking_mlflow=false", "tracking_wandb=false", "mixed_precision=no"]
    assert main([*argv, *[x for s in fast for x in ("--set", s)], "--quiet"]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["labels"] == ["negative", "positive"] and comparison["sources"] == ["review", "sentence"]
    assert comparison["n_runs"] == {"full": 3, "lora": 3}


# --- bad input -------------------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    rows = [(f"text {i}", "ab"[i % 2]) for i in range(60)]
    return {"train": write_csv(tmp_path / "train.csv", ["text", "label"], rows),
            "test": write_csv(tmp_path / "test.csv", ["text", "label"],
                              [(f"held {i}", "ab"[i % 2]) for i in range(10)])}


def test_missing_column_names_the_columns_found(tmp_path, files):
    with pytest.raises(DataError, match=r"no column 'review' \(text_column\); the columns found are: text, label"):
        build(own(tmp_path, train_file=files["train"], test_file=files["test"], text_column="review"))


def test_single_class(tmp_path, files):
    train = write_csv(tmp_path / "one.csv", ["text", "label"], [(f"t {i}", "a") for i in range(30)])
    with pytest.raises(DataError, match="has a single class \\('a'\\); a classifier needs at least 2"):
        build(own(tmp_path, train_file=train, test_file=files["test"]))


def test_test_label_not_in_training(tmp_path, files):
    test = write_csv(tmp_path / "t.csv", ["text", "label"], [("x", "a"), ("y", "c"), ("z", "c")])
    with pytest.raises(DataError, match="label 'c' \\(2 rows\\) never occurs in the training data"):
        build(own(tmp_path, train_file=files["train"], test_file=test))


def test_unreadable_file(tmp_path, files):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match=r"config key 'train_file': cannot read '.*broken.parquet' as PARQUET"):
        build(own(tmp_path, train_file=str(bad), test_file=files["test"]))
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        build(own(tmp_path, train_file=str(tmp_path / "x.xlsx"), test_file=files["test"]))


def test_parquet_with_non_string_text_column(tmp_path, files):
    import pandas as pd

    path = tmp_path / "numbers.parquet"
    pd.DataFrame({"text": list(range(20)), "label": ["a", "b"] * 10}).to_parquet(path)
    with pytest.raises(DataError, match="text column 'text' holds int64 values, not text"):
        build(own(tmp_path, train_file=str(path), test_file=files["test"]))


def test_config_errors_for_own_data(tmp_path):
    with pytest.raises(ConfigError, match="'test_file': required when data_source is 'files'"):
        own(tmp_path, train_file="a.csv")
    with pytest.raises(ConfigError, match="'train_file': only read with data_source: files"):
        Config(data_source="embedded", train_file="a.csv")
    with pytest.raises(ConfigError, match="'text_column': only read with your own data"):
        Config(data_source="embedded", text_column="body")
    with pytest.raises(ConfigError, match="'sources': belongs to the sentiment preset"):
        own(tmp_path, train_file="a.csv", test_file="b.csv", sources=["imdb"])
    assert Config().samples_per_class == 15000  # the preset's default
    assert own(tmp_path, train_file="a", test_file="b").samples_per_class is None  # your data: as it is


@pytest.mark.slow
def test_checkpoint_head_named_like_the_data_keeps_its_head_and_gets_a_base_row(tmp_path):
    """A checkpoint whose head names your classes (other order, other case) keeps that head, reordered by name."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from finetune_compare.models.hf import HFModel

    from ..conftest import make_tiny_roberta

    path = str(make_tiny_roberta(tmp_path / "clf", id2label={0: "Praise", 1: "complaint"}))
    provider = HFModel(Config(model_name=path).model)
    assert not provider.head_fits  # the preset's three classes: no
    provider.use_labels(("complaint", "praise"))
    assert provider.head_fits and provider.label_order == [1, 0]
    ours, raw = provider.load_model().eval(), AutoModelForSequenceClassification.from_pretrained(path).eval()
    batch = AutoTokenizer.from_pretrained(path)(["a fine film"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(ours(**batch).logits, raw(**batch).logits[:, [1, 0]])
    assert ours.config.id2label == {0: "complaint", 1: "praise"}
    # end to end: the untrained row is evaluated on your data, named by your labels
    rows = [{"text": f"text {i} is {['good', 'bad'][i % 2]}", "label": ["praise", "complaint"][i % 2]}
            for i in range(200)]
    cfg = tiny_config(path, tmp_path, data_source="files", samples_per_class=None, test_samples_per_class=None,
                      train_file=write_jsonl(tmp_path / "tr.jsonl", rows[:160]),
                      test_file=write_jsonl(tmp_path / "te.jsonl", rows[160:]), methods=["head"])
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    base = json.loads((Path(cfg.output_dir) / "runs" / "base" / "metrics.json").read_text())
    assert base["labels"] == ["complaint", "praise"] and "kept the checkpoint's complaint/praise head" in base["head"]


def test_class_too_small_to_split(tmp_path, files):
    rows = [(f"text {i}", "a") for i in range(100)] + [("rare one", "b")]
    train = write_csv(tmp_path / "rare.csv", ["text", "label"], rows)
    test = write_csv(tmp_path / "t2.csv", ["text", "label"], [("x", "a"), ("y", "b")])
    with pytest.raises(DataError, match="validation split is too small .* b: 0.*add training examples of the short "
                                        "classes, give a validation file/split, or raise val_fraction"):
        build(own(tmp_path, train_file=train, test_file=test))


def test_keys_your_data_would_not_read_are_errors(tmp_path):
    base = dict(train_file="a.csv", test_file="b.csv")
    with pytest.raises(ConfigError, match="'clean_text': belongs to the sentiment preset"):
        own(tmp_path, clean_text=False, **base)
    with pytest.raises(ConfigError, match="'allow_upsampling': only used when samples_per_class is set"):
        own(tmp_path, allow_upsampling=True, **base)
    with pytest.raises(ConfigError, match="'val_fraction': not used when validation_file is given"):
        own(tmp_path, validation_file="v.csv", val_fraction=0.2, **base)
    assert Config().sources == ["imdb", "sst5", "tweeteval"] and own(tmp_path, **base).sources is None


def test_edited_data_file_is_not_resumed(tmp_path, files):
    """Runs trained on a file that has since changed are never mixed with new ones (same path, new content)."""
    from finetune_compare.experiments.study.ownership import check_output_dir, claim_output_dir, release_output_dir

    cfg = own(tmp_path, train_file=files["train"], test_file=files["test"])
    claim_output_dir(cfg, cfg.output_dir)
    release_output_dir(cfg.output_dir)
    finished = Path(cfg.output_dir) / "runs" / "full" / "seed-42" / "metrics.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    assert check_output_dir(cfg, cfg.output_dir) == "resume"
    with open(files["train"], "a", encoding="utf-8") as fh:
        fh.write("one more row,a\n")
    with pytest.raises(Exception, match="holds results of a different configuration \\(data_files_sha256"):
        check_output_dir(cfg, cfg.output_dir)


def test_hub_dataset_class_label_names_and_splits(tmp_path):
    """A hub dataset's ClassLabel names become the classes (how tweet_eval, sst2, ... ship their labels); the
    named validation split is used as validation, and training rows it repeats are removed from training."""
    import datasets

    folder = tmp_path / "classlabel-dataset"
    folder.mkdir()
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows = [{"sentence": f"text {i} is {['bad', 'good'][i % 2]}", "label": i % 2} for i in range(300)]
    for name, part in (("train", rows), ("dev", rows[:40]), ("test", [{"sentence": f"other {i}", "label": i % 2}
                                                                     for i in range(20)])):
        datasets.Dataset.from_list(part, features=features).to_parquet(str(folder / f"{name}.parquet"))
    with pytest.raises(DataError, match="split 'devel': .*Unknown split \"devel\". Should be one of \\['train', "
                                        "'validation', 'test'\\]"):
        build(Config(data_source="hub", dataset_name=str(folder), text_column="sentence", validation_split="devel"))
    cfg = Config(data_source="hub", dataset_name=str(folder), text_column="sentence", validation_split="validation")
    bundle = build(cfg)
    assert bundle.labels == ("neg", "pos")
    assert (len(bundle.train), len(bundle.validation), len(bundle.test)) == (260, 40, 20)
    assert bundle.report["leakage"]["data"] == {"train_rows_removed": 40, "matched_in": {"validation": 40}}


def test_missing_label_is_named_even_in_the_first_row(tmp_path):
    """A row without a label stops with its row number, whatever the column's kind (a missing label in the first
    row once made the kind look like integers and ended in a TypeError)."""
    rows = [{"text": f"t {i}", "label": None if i == 0 else "ab"[i % 2]} for i in range(100)]
    train, test = write_jsonl(tmp_path / "tr.jsonl", rows), write_jsonl(tmp_path / "te.jsonl", rows[1:11])
    for extra in ({}, {"label_names": ["a", "b"]}):
        with pytest.raises(DataError, match="1 row\\(s\\) have no label in column 'label' \\(first: row 1\\)"):
            build(own(tmp_path, train_file=train, test_file=test, **extra))


def test_only_an_empty_cell_is_missing(tmp_path, caplog):
    """NA, null, None and nan are texts (and None a class name); a table library's missing-value words are not ours."""
    words = ["NA", "null", "None", "nan", "N/A"]
    rows = [(f"{w}" if i < len(words) else f"review number {i}", "None" if i % 2 else "good") for i, w in
            enumerate(words * 40)] + [("", "good")]
    train = write_csv(tmp_path / "train.csv", ["text", "label"], rows)
    test = write_csv(tmp_path / "test.csv", ["text", "label"], [(f"test {i}", "None" if i % 2 else "good")
                                                                 for i in range(20)])
    bundle = build(own(tmp_path, train_file=train, test_file=test))
    assert bundle.labels == ("None", "good")
    texts = {e.text for e in bundle.train + bundle.validation}
    assert set(words) <= texts
    assert bundle.report["cleaning"]["data"]["train"]["empty_dropped"] == 1  # the one truly empty cell


def test_a_cluster_column_reaches_the_test_examples(tmp_path):
    rows = [(f"sample text number {i}", "ab"[i % 2], f"film-{i // 4}" if i % 7 else "") for i in range(200)]
    train = write_csv(tmp_path / "train.csv", ["text", "label", "film"], rows)
    test = write_csv(tmp_path / "test.csv", ["text", "label", "film"],
                     [(f"other text {i}", "ab"[i % 2], f"film-{i // 5}" if i % 7 else "") for i in range(40)])
    bundle = build(own(tmp_path, train_file=train, test_file=test, cluster_column="film"))
    by_row = {int(e.id.split(":")[1]): e.cluster for e in bundle.test}
    assert by_row[1] == "film-0" and by_row[12] == "film-2" and by_row[7] is None  # empty cell: its own cluster
    with pytest.raises(DataError, match="no column 'movie' \\(cluster_column\\)"):
        build(own(tmp_path, train_file=train, test_file=test, cluster_column="movie"))


@pytest.mark.slow
def test_a_comparison_resamples_the_declared_clusters(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", binary_rows(160))
    test_rows = [{**r, "user": f"u{i // 6}"} for i, r in enumerate(binary_rows(60, offset=1000))]
    test = write_jsonl(tmp_path / "test.jsonl", test_rows)
    cfg = tiny_config(tiny_bert, tmp_path, data_source="files", samples_per_class=None, test_samples_per_class=None,
                      train_file=train, test_file=test, text_column="body", label_column="y", cluster_column="user",
                      label_names=["complaint", "praise"], num_runs=3, methods=["full", "lora"], learning_rate=2e-4)
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    out = Path(cfg.output_dir)
    rows = [json.loads(line) for line in (out / "runs" / "lora" / "seed-7" / "predictions.jsonl").open()]
    assert {r["cluster"] for r in rows} == {f"u{i}" for i in range(10)}
    test_level = json.loads((out / "comparison.json").read_text())["comparisons"]["lora_vs_full"]["primary"][
        "test_level"]
    assert test_level["resampled"] == "clusters" and test_level["n_clusters"] == 10
    assert "resampled whole clusters (10 clusters" in (out / "report.md").read_text()
