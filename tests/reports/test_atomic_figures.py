"""Figures are written like every record: atomically. A savefig that fails part way leaves the
figure that was there (or none) and no temp file; one that succeeds leaves exactly its files."""

from __future__ import annotations

import pytest

from reports.plots.style import new_figure, save_figure


def _figure():
    fig = new_figure(2.0, 1.5)
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_a_figure_is_written_whole_shared_readable_and_alone(tmp_path):
    paths = save_figure(_figure(), tmp_path, "f", ("png", "pdf", "svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "f.svg"]
    assert [p.name for p in paths] == ["f.png", "f.pdf", "f.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and paths[1].read_bytes()[:4] == b"%PDF"
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)


@pytest.mark.parametrize("before", ["no figure", "an old figure"])
def test_a_savefig_that_fails_part_way_leaves_no_partial_file_and_no_temp(tmp_path, before):
    if before == "an old figure":
        (tmp_path / "f.png").write_bytes(b"the old figure")
    fig = _figure()

    def fails_part_way(fh, **kwargs):
        fh.write(b"\x89PNG half a figure")
        raise RuntimeError("renderer failed")

    fig.savefig = fails_part_way
    with pytest.raises(RuntimeError, match="renderer failed"):
        save_figure(fig, tmp_path, "f", ("png",))
    left = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert left == ({} if before == "no figure" else {"f.png": b"the old figure"})
