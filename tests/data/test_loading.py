import gzip
import json
import shutil

import pytest

from finetune_compare.data.loading import EMBEDDED_DIR, read_embedded, read_local
from finetune_compare.data.sources import CLASS_NAMES, SOURCES
from finetune_compare.errors import DataError


def write_split(root, source, split, rows, raw: bytes | None = None):
    spec = SOURCES[source]
    path = root / spec.local_dir / f"{split}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data))
    return path


@pytest.fixture
def local_copy(tmp_path):
    """A full copy of the embedded sample in the local layout, to be broken by each test."""
    root = tmp_path / "data"
    shutil.copytree(EMBEDDED_DIR, root)
    return root


def test_embedded_sample_has_every_split_and_class():
    for name, spec in SOURCES.items():
        for split in spec.splits:
            rows = read_embedded(spec, split)
            assert {r.native_label for r in rows} == set(range(len(spec.native_labels))), (name, split)


def test_label_mapping_by_name():
    imdb, sst, tweet = SOURCES["imdb"], SOURCES["sst5"], SOURCES["tweeteval"]
    assert [CLASS_NAMES[imdb.to_class(i)] for i in range(2)] == ["negative", "positive"]
    assert [CLASS_NAMES[sst.to_class(i)] for i in range(5)] == ["negative", "negative", "neutral", "positive",
                                                                  "positive"]
    assert [CLASS_NAMES[tweet.to_class(i)] for i in range(3)] == ["negative", "neutral", "positive"]


def test_missing_directory_names_path_and_layout(tmp_path):
    with pytest.raises(DataError) as err:
        read_local(tmp_path / "nowhere", SOURCES["imdb"], "train")
    assert f"data_dir '{tmp_path / 'nowhere'}' does not exist" in str(err.value)
    assert "imdb/{train,test}.jsonl.gz" in str(err.value)


def test_missing_file(local_copy):
    (local_copy / "sst5" / "test.jsonl.gz").unlink()
    with pytest.raises(DataError, match=r"missing file .*sst5/test.jsonl.gz for source 'sst5' split 'test'"):
        read_local(local_copy, SOURCES["sst5"], "test")


def test_malformed_json_gives_file_and_line(local_copy):
    path = write_split(local_copy, "imdb", "train", [], raw=b'{"text": "ok", "label": 0}\n{"text": broken\n')
    with pytest.raises(DataError, match=rf"{path}:2: malformed JSON line"):
        read_local(local_copy, SOURCES["imdb"], "train")


def test_label_outside_scheme(local_copy):
    path = write_split(local_copy, "imdb", "train", [{"text": "a", "label": 0}, {"text": "b", "label": 2}])
    with pytest.raises(DataError) as err:
        read_local(local_copy, SOURCES["imdb"], "train")
    assert str(err.value) == f"{path}:2: label 2 is not in imdb's scheme {{0: neg, 1: pos}}"


def test_label_name_mismatch_is_refused(local_copy):
    write_split(local_copy, "tweeteval", "train", [{"text": "a", "label": 0, "label_text": "positive"}])
    with pytest.raises(DataError, match="label 0 is named 'positive'.*refusing to guess"):
        read_local(local_copy, SOURCES["tweeteval"], "train")


def test_missing_keys_and_wrong_types(local_copy):
    write_split(local_copy, "imdb", "train", [{"review": "a", "label": 0}])
    with pytest.raises(DataError, match=r":1: expected an object with keys 'text' and 'label'"):
        read_local(local_copy, SOURCES["imdb"], "train")
    write_split(local_copy, "imdb", "train", [{"text": 5, "label": 0}])
    with pytest.raises(DataError, match=r":1: 'text' must be a string, got int"):
        read_local(local_copy, SOURCES["imdb"], "train")


def test_empty_split_and_non_utf8_and_bad_gzip(local_copy):
    write_split(local_copy, "imdb", "test", [], raw=b"\n")
    with pytest.raises(DataError, match="split 'test' of source 'imdb' has no rows"):
        read_local(local_copy, SOURCES["imdb"], "test")
    write_split(local_copy, "imdb", "test", [], raw='{"text": "caf\xe9", "label": 0}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_local(local_copy, SOURCES["imdb"], "test")
    (local_copy / "imdb" / "test.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_local(local_copy, SOURCES["imdb"], "test")


def test_plain_jsonl_is_accepted(tmp_path):
    path = tmp_path / "imdb" / "train.jsonl"
    path.parent.mkdir()
    path.write_text('{"text": "fine", "label": 1}\n')
    assert read_local(tmp_path, SOURCES["imdb"], "train")[0].native_label == 1


def test_byte_order_mark_is_accepted(local_copy):
    path = local_copy / "sst5" / "test.jsonl.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + raw))  # as Windows editors save UTF-8
    rows = read_local(local_copy, SOURCES["sst5"], "test")
    assert len(rows) == len(raw.decode().strip().splitlines())
