"""Stores through the public package: memory, SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import kasm


def workspace(id: str = "web") -> dict:
    return {"id": id, "friendly_name": "Web", "image": "nginx:1", "port": 80, "protocol": "http",
            "resources": {"millicores": 500, "memory_bytes": 64 << 20, "gpus": 0}}


def test_insert_get_update_list_remove(store: kasm.Store) -> None:
    assert store.backend_name == "memory"
    assert store.insert("workspace", workspace()) == 1
    row = store.get("workspace", "web")
    assert row.version == 1 and row.value["image"] == "nginx:1"
    row.value["image"] = "nginx:2"
    assert store.update("workspace", row.value, row.version) == 2
    assert [r.value["id"] for r in store.list("workspace")] == ["web"]
    store.remove("workspace", "web")
    with pytest.raises(kasm.NotFound):
        store.get("workspace", "web")


def test_store_errors_have_their_types(store: kasm.Store) -> None:
    store.insert("workspace", workspace())
    with pytest.raises(kasm.AlreadyExists):
        store.insert("workspace", workspace())
    with pytest.raises(kasm.Aborted):
        store.update("workspace", workspace(), expected_version=7)
    with pytest.raises(kasm.NotFound):
        store.remove("workspace", "nope")
    with pytest.raises(kasm.InvalidArgument, match="unknown model kind 'gizmo'"):
        store.get("gizmo", "x")
    with pytest.raises(kasm.InvalidArgument, match="port"):
        store.insert("workspace", {**workspace("bad"), "port": "eighty"})
    with pytest.raises(kasm.InvalidArgument):
        store.list("workspace", {"no_such_column": "x"})


def test_wrong_python_types_raise_type_error_naming_the_argument(store: kasm.Store) -> None:
    with pytest.raises(TypeError, match="id must be a str, not int"):
        store.get("workspace", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be a mapping"):
        store.insert("workspace", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected_version must be an int"):
        store.update("workspace", workspace(), "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store.insert("workspace", {"id": object()})


def test_upsert_inserts_then_replaces(store: kasm.Store) -> None:
    assert store.upsert("workspace", workspace()).version == 1
    assert store.upsert("workspace", {**workspace(), "port": 81}).value["port"] == 81


def test_closed_store_raises_a_clear_error(store: kasm.Store) -> None:
    store.close()
    assert store.closed
    with pytest.raises(kasm.FailedPrecondition, match="store is closed"):
        store.get("workspace", "web")
    store.close()  # Idempotent.


def test_sqlite_store_persists_across_opens(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/kasm.db"
    with kasm.open_store(url) as s:
        assert s.backend_name == "sqlite"
        s.insert("zone", {"id": "local", "name": "Local"})
    del s
    gc.collect()
    with kasm.open_store(str(tmp_path / "kasm.db")) as s:
        assert s.get("zone", "local").value["name"] == "Local"


def test_unreadable_sqlite_file_is_data_loss(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises((kasm.DataLoss, kasm.Unavailable)):
        kasm.open_store(f"sqlite://{bad}")


def test_bad_store_urls() -> None:
    with pytest.raises(kasm.InvalidArgument, match="unsupported store URL"):
        kasm.open_store("redis://127.0.0.1")
    with pytest.raises(TypeError):
        kasm.open_store(None)  # type: ignore[arg-type]


def test_postgres_store_when_configured() -> None:
    url = os.environ.get("KASM_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("KASM_TEST_POSTGRES_URL is not set")
    with kasm.open_store(url) as s:
        assert s.backend_name == "postgresql"
        s.ping()


def test_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(kasm.Unavailable):
        kasm.open_store("postgresql://kasm:x@127.0.0.1:1/kasm", pool_size=1)


def test_models_normalise_and_validate() -> None:
    assert "workspace" in kasm.model_kinds()
    w = kasm.normalize("workspace", workspace())
    assert w["id"] == "web" and "resources" in w
    with pytest.raises(kasm.InvalidArgument):
        kasm.normalize("zone", {"id": "bad id with spaces", "name": "x"})
    assert kasm.json_schema("session")["type"] == "object"
