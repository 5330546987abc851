import stats


def test_mean():
    assert stats.mean([1, 2, 3]) == 2.0


def test_volume():
    assert stats.volume([2, 3, 4]) == 24.0


def test_normalise():
    assert list(stats.normalise([0, 5, 10])) == [0.0, 0.5, 1.0]
