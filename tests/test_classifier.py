import numpy as np
import pytest

from sba_desktop.lab.classifier import MNClassifier
from sba_desktop.lab.metrics import average_precision, retrieval_scores


def test_mn_votes_by_hand():
    # labelled points on a line; the query at 0 sees neighbours in order a(0.1) b(0.2) b(0.3) a(5)
    x = np.array([[0.1], [0.2], [0.3], [5.0]], np.float32)
    y = ["a", "b", "b", "a"]
    clf = MNClassifier(k=4).fit(x, y)
    s = clf.scores(np.array([[0.0]], np.float32))[0]
    a = 1 / 1 + 1 / 4
    b = 1 / 2 + 1 / 3
    assert s[clf.categories.index("a")] == pytest.approx(a / (a + b))
    assert s[clf.categories.index("b")] == pytest.approx(b / (a + b))
    p = clf.predict(np.array([[0.0]], np.float32))[0]
    assert p.category == "a" and p.confidence == pytest.approx(a / (a + b))
    # K = 3: a = 1 beats b = 1/2 + 1/3; a crowd of three b's (1/2 + 1/3 + 1/4 > 1) outvotes it
    assert MNClassifier(k=3).fit(x, y).predict(np.array([[0.0]], np.float32))[0].category == "a"
    crowd = MNClassifier(k=4).fit(np.array([[0.1], [0.2], [0.3], [0.4]], np.float32), ["a", "b", "b", "b"])
    assert crowd.predict(np.array([[0.0]], np.float32))[0].category == "b"
    # 1-NN
    assert MNClassifier(k=1).fit(x, y).predict(np.array([[0.26]], np.float32))[0].category == "b"


def test_average_precision_by_hand():
    assert average_precision(np.array([1, 0, 1, 0]), 2) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 0, 0]), 0) == 0.0


def test_retrieval_scores_perfect_and_ns():
    x = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99]], np.float32)
    m, ns = retrieval_scores(x @ x.T, np.array([0, 0, 1, 1]))
    assert m == pytest.approx(1.0)
    assert ns == pytest.approx(2.0)  # groups of two: both members in the top 4
