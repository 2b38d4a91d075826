"""The study's sampler and test grids, and the error metrics."""

import numpy as np
import pytest

import jpinn
from jpinn.data import TEST_SETS, n_test_points, test_points as make_test_points


@pytest.fixture(params=["convection", "reaction", "wave"])
def pde(request):
    return jpinn.pdes.make_pde(request.param)


def test_counts_and_ranges(pde):
    data = jpinn.sample_collocation(pde, seed=123)
    res = np.asarray(data.residual_points)
    assert res.shape == (10_000, 2)
    assert data.initial_points.shape == (257, 2)
    assert data.boundary_left.shape == data.boundary_right.shape == (101, 2)
    assert data.counts() == {"residual": 10_000, "initial": 257, "boundary": 202}
    x, t = np.linspace(pde.x_min, pde.x_max, 257), np.linspace(0, 1, 101)
    # interior: x strictly inside, t in (0, 1] with t = 1 reachable
    assert res[:, 0].min() >= x[1] - 1e-6 and res[:, 0].max() <= x[-2] + 1e-6
    assert res[:, 1].min() >= t[1] - 1e-6 and res[:, 1].max() <= 1.0 + 1e-6
    # every point lies on the grid
    ix = np.abs(res[:, 0:1] - x[None, :].astype(np.float32)).min(1)
    it = np.abs(res[:, 1:2] - t[None, :].astype(np.float32)).min(1)
    assert ix.max() < 1e-5 and it.max() < 1e-6
    ini = np.asarray(data.initial_points)
    np.testing.assert_allclose(ini[:, 0], x, atol=1e-6)
    assert np.all(ini[:, 1] == 0)
    np.testing.assert_allclose(np.asarray(data.boundary_left)[:, 1], t, atol=1e-7)
    assert np.all(np.asarray(data.boundary_left)[:, 0] == np.float32(pde.x_min))
    assert np.all(np.asarray(data.boundary_right)[:, 0] == np.float32(pde.x_max))


def test_no_duplicates_and_seeded(pde):
    a = np.asarray(jpinn.sample_collocation(pde, seed=7).residual_points)
    b = np.asarray(jpinn.sample_collocation(pde, seed=7).residual_points)
    c = np.asarray(jpinn.sample_collocation(pde, seed=8).residual_points)
    assert len(np.unique(a, axis=0)) == len(a)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_whole_interior_when_asked():
    pde = jpinn.pdes.Convection()
    data = jpinn.sample_collocation(pde, n_x=9, n_t=5, n_residual=7 * 4, seed=0)
    assert len(np.unique(np.asarray(data.residual_points), axis=0)) == 28


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n_residual": 25_501}, "data.n_residual"),
        ({"n_residual": 0}, "data.n_residual"),
        ({"n_x": 2}, "data.n_x"),
        ({"n_t": 1.5}, "data.n_t"),
    ],
)
def test_bad_sizes(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        jpinn.sample_collocation(jpinn.pdes.Convection(), **kwargs)


@pytest.mark.parametrize("name", list(TEST_SETS))
def test_test_sets(pde, name):
    points = np.asarray(make_test_points(pde, name))
    n_x, n_t = TEST_SETS[name]
    assert points.shape == ((n_x - 2) * (n_t - 1) + n_x + 2 * n_t, 2) == (n_test_points(name), 2)
    # interior, initial row and both boundary columns; only the two t = 0 corners repeat
    assert len(np.unique(points, axis=0)) == n_x * n_t
    assert points[:, 0].min() == np.float32(pde.x_min) and points[:, 1].max() == 1.0


def test_test_set_sizes():
    assert n_test_points("full") == 255 * 100 + 257 + 202
    assert n_test_points("companion") == 127 * 100 + 129 + 202
    with pytest.raises(ValueError, match="data.test_set"):
        make_test_points(jpinn.pdes.Wave(), "coarse")


def test_l2re_l1re_by_hand():
    prediction = np.array([1.0, 2.0, 3.0, -1.0])
    exact = np.array([1.0, 2.5, 4.0, -1.0])
    # ||(0, -0.5, -1, 0)||_2 / ||(1, 2.5, 4, -1)||_2 = sqrt(1.25) / sqrt(24.25)
    assert float(jpinn.l2re(prediction, exact)) == pytest.approx(np.sqrt(1.25 / 24.25), rel=1e-6)
    # 1.5 / 8.5
    assert float(jpinn.l1re(prediction, exact)) == pytest.approx(1.5 / 8.5, rel=1e-6)
    assert float(jpinn.l2re(exact, exact)) == 0.0
