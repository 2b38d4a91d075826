"""A run's predictions on given points or on a grid, written to .npz or .csv.

    jpinn predict RUN_DIR --grid 257 101 --out u.npz         # a grid over the domain (one count per coordinate)
    jpinn predict RUN_DIR --grid 64 --out u.csv              # 64 points along every coordinate
    jpinn predict RUN_DIR --points points.csv --out u.csv    # columns named as the coordinates (x,t)
    jpinn predict RUN_DIR --points points.npz --out u.npz --exact

--points reads an .npz holding ``points`` (N x d, columns in the problem's coordinate order)
or one array per coordinate, or a .csv whose header names the coordinates. The output holds
one array (npz) or column (csv) per coordinate, then one per field; ``--exact`` adds the
closed-form solution as FIELD_exact where the problem has one. Points outside the domain are
predicted all the same (extrapolation), and counted on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

PROG = "predict.py"  # the name in messages: "jpinn predict" under the jpinn command
BATCH = 65_536  # points per evaluation: bounded memory for any grid
MAX_POINTS = 10**8


class InputError(ValueError):
    """A bad option or input file: the one-line message names it."""


def parse(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a run folder written by jpinn train")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--points", help="an .npz (points, or one array per coordinate) or .csv (header: the coordinates)")
    where.add_argument("--grid", nargs="+", type=int, metavar="N",
                       help="points per coordinate over the domain box, endpoints included (one N: the same for all)")
    parser.add_argument("--out", required=True, help="the output file, .npz or .csv")
    parser.add_argument("--exact", action="store_true", help="add the closed-form solution (FIELD_exact) where there is one")
    return parser.parse_args(argv)


def read_points(path: str, coordinates: tuple[str, ...]) -> np.ndarray:
    """The (N, d) points of an .npz or .csv file, columns in ``coordinates`` order."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"--points: {path}: no such file")
    d = len(coordinates)
    try:
        if file.suffix == ".npz":
            with np.load(file) as data:
                if "points" in data:
                    points = np.asarray(data["points"], dtype=np.float64)
                elif all(c in data for c in coordinates):
                    points = np.stack([np.asarray(data[c], dtype=np.float64).ravel() for c in coordinates], axis=1)
                else:
                    raise InputError(f"--points: {path}: needs an array 'points' (N x {d}) or one array per coordinate"
                                     f" ({', '.join(coordinates)}); holds {', '.join(data.files) or 'nothing'}")
        elif file.suffix == ".csv":
            with open(file) as handle:
                header = [h.strip() for h in handle.readline().strip().split(",")]
            missing = [c for c in coordinates if c not in header]
            if missing:
                raise InputError(f"--points: {path}: the header names {', '.join(header) or 'nothing'}; needs the"
                                 f" coordinates {', '.join(coordinates)}")
            table = np.loadtxt(file, delimiter=",", skiprows=1, ndmin=2)
            points = table[:, [header.index(c) for c in coordinates]]
        else:
            raise InputError(f"--points: {path}: allowed: an .npz or .csv file")
    except InputError:
        raise
    except Exception as error:  # a damaged file: its name and the reader's reason
        raise InputError(f"--points: {path}: unreadable ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if points.ndim != 2 or points.shape[1] != d or points.shape[0] == 0:
        raise InputError(f"--points: {path}: needs N x {d} points ({', '.join(coordinates)}), got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"--points: {path}: holds non-finite coordinates")
    return points


def grid_points(counts: list[int], box) -> tuple[np.ndarray, tuple[int, ...]]:
    """The grid over ``box`` with ``counts`` points per coordinate (one count: for all), as
    (N, d) points in C order over the coordinates, and its shape."""
    d = len(box.coordinates)
    if len(counts) == 1:
        counts = counts * d
    if len(counts) != d:
        raise InputError(f"--grid: one count per coordinate ({', '.join(box.coordinates)}) or one for all, got {len(counts)}")
    if any(n < 2 for n in counts):
        raise InputError(f"--grid: each count must be at least 2 (the box's ends), got {' '.join(map(str, counts))}")
    if int(np.prod(counts, dtype=np.float64)) > MAX_POINTS:
        raise InputError(f"--grid: {' x '.join(map(str, counts))} points; allowed: at most {MAX_POINTS:.0e}")
    axes = [np.linspace(lo, hi, n) for lo, hi, n in zip(box.lower, box.upper, counts)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1), tuple(counts)


def _check_out(path: str) -> Path:
    out = Path(path)
    if out.suffix not in (".npz", ".csv"):
        raise InputError(f"--out: {path}: allowed: a file ending in .npz or .csv")
    if out.is_dir():
        raise InputError(f"--out: {path} is a folder; give a file name")
    folder = out.parent if str(out.parent) else Path(".")
    from jpinn import io

    try:
        io.check_run_folder(folder, resume=True, field="--out")
    except io.RunFolderError as error:
        raise InputError(str(error)) from None
    return out


def predict(model, points: np.ndarray, dtype) -> np.ndarray:
    """``model.predict`` on ``points`` in batches, float64 (N, fields)."""
    import equinox as eqx
    import jax.numpy as jnp

    run = eqx.filter_jit(lambda m, x: m.predict(x))
    parts = [np.asarray(run(model, jnp.asarray(points[i:i + BATCH], dtype=dtype)), dtype=np.float64)
             for i in range(0, len(points), BATCH)]
    return np.concatenate([p.reshape(len(p), -1) for p in parts])


def _write(out: Path, columns: dict[str, np.ndarray], shape: tuple[int, ...] | None) -> None:
    """Atomically: a failed write leaves no partial file, an earlier one stays whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            if out.suffix == ".npz":
                arrays = {k: (v.reshape(shape) if shape else v) for k, v in columns.items()}
                np.savez(stream, **arrays, **({"shape": np.asarray(shape)} if shape else {}))
            else:
                table = np.stack(list(columns.values()), axis=1)
                np.savetxt(stream, table, delimiter=",", header=",".join(columns), comments="", fmt="%.17g")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from jpinn import io
    from jpinn.experiment import load_run

    try:
        out = _check_out(args.out)
        run = load_run(args.run_dir)
        box = run.pde.domain()
        coordinates, fields = tuple(box.coordinates), tuple(run.pde.fields)
        if args.exact and not run.pde.has_exact:
            raise InputError(f"--exact: {run.pde.name} has no closed-form solution")
        if args.grid is not None:
            points, shape = grid_points(args.grid, box)
        else:
            points, shape = read_points(args.points, coordinates), None
    except (InputError, io.RunFolderError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    lower, upper = np.asarray(box.lower, float), np.asarray(box.upper, float)
    outside = int(np.sum(np.any((points < lower) | (points > upper), axis=1)))
    if outside:
        print(f"{PROG}: {outside} of {len(points)} points lie outside the domain box (extrapolated)", file=sys.stderr)
    values = predict(run.model, points, run.w.dtype)
    columns = {c: points[:, i] for i, c in enumerate(coordinates)}
    columns.update({f: values[:, i] for i, f in enumerate(fields)})
    if args.exact:
        from jpinn.problems import exact_fields
        import jax.numpy as jnp

        exact = np.asarray(exact_fields(run.pde, jnp.asarray(points, dtype=run.w.dtype)), dtype=np.float64)
        exact = exact.reshape(len(points), -1)
        columns.update({f"{f}_exact": exact[:, i] for i, f in enumerate(fields)})
    try:
        _write(out, columns, shape)
    except OSError as error:
        print(f"{PROG}: error: cannot write {out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"{PROG}: {len(points)} points x {len(fields)} field(s) ({', '.join(fields)}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
