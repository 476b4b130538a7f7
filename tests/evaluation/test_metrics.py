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
