"""The real datasets (via $LSTMPACK_DATA): every one but enwik8 verifies against its SHA-256."""

from __future__ import annotations

import common.datasets as D


def test_real_data_every_dataset_but_enwik8_verifies(real_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMPACK_CACHE", str(tmp_path / "cache"))  # hash for real, no cache
    rows = {r.name: r for r in D.check_all(real_data_root)}
    assert set(rows) == set(D.DATASETS)
    for name, row in rows.items():
        if name != "enwik8":
            assert row.status == "verified", (name, row.detail)
            assert row.folder == str(real_data_root / name)
