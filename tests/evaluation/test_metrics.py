import pytest

from finetune_compare.evaluation.metrics import classification_metrics, evaluation_metrics


def test_known_values():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class: neg P=1/2 R=1/2, neu P=2/3 R=1, pos P=1 R=1/2
    assert m["per_class"]["neutral"]["precision"] == pytest.approx(2 / 3)
    assert m["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [0.5, 0.8, 2 / 3]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_per_source_macro_over_present_classes():
    y_true = [0, 2, 0, 1, 2]
    y_pred = [0, 1, 0, 1, 2]
    m = evaluation_metrics(y_true, y_pred, ["imdb", "imdb", "sst5", "sst5", "sst5"])
    imdb = m["per_source"]["imdb"]
    assert imdb["n"] == 2 and "neutral" not in imdb["per_class"]
    # IMDB: negative right (F1 1), positive wrongly called neutral (F1 0): macro over the 2 present classes
    assert imdb["macro_f1"] == pytest.approx(0.5)
    assert m["per_source"]["sst5"]["accuracy"] == 1.0


def test_metrics_from_one_confusion_matrix_equal_sklearns():
    import numpy as np
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    for n_classes, absent in ((3, None), (3, 1), (4, 0)):
        y = rng.integers(0, n_classes, 400)
        if absent is not None:
            y[y == absent] = (absent + 1) % n_classes  # a class missing from the truth: macro over those present
        pred = np.where(rng.random(400) < 0.5, y, rng.integers(0, n_classes, 400))
        pred[pred == n_classes - 1] = 0 if absent == 0 else pred[pred == n_classes - 1]  # a class never predicted
        labels = [f"c{i}" for i in range(n_classes)]
        m = classification_metrics(y, pred, labels)
        present = sorted(set(y.tolist()))
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=present, average="macro", zero_division=0)
        pc, rc, fc, _ = precision_recall_fscore_support(y, pred, labels=list(range(n_classes)), zero_division=0)
        assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
        assert (m["macro_f1"], m["macro_precision"], m["macro_recall"]) == pytest.approx((f, p, r), abs=1e-12)
        for i in present:
            assert m["per_class"][f"c{i}"]["f1"] == pytest.approx(fc[i], abs=1e-12)
            assert m["per_class"][f"c{i}"]["precision"] == pytest.approx(pc[i], abs=1e-12)
            assert m["per_class"][f"c{i}"]["recall"] == pytest.approx(rc[i], abs=1e-12)
