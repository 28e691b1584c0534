"""Source DB helpers: URLs, engines, pragmas, schema creation, counts and typed bulk inserts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from mlops.source.db import (
    create_schema,
    default_source_url,
    insert_columns,
    make_engine,
    missing_tables,
    parse_source_url,
    reset_schema,
    table_counts,
)
from mlops.source.schema import TABLES, products
from tests import pg_server


def test_default_url_is_sqlite_under_mlops_home(mlops_home: Path) -> None:
    assert default_source_url() == f"sqlite:///{mlops_home / 'source.db'}"
    engine = make_engine()
    assert Path(engine.url.database) == mlops_home / "source.db"


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'source.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "a" / "b").is_dir()


def test_create_schema_is_idempotent_and_counts_start_at_zero(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    assert missing_tables(engine) == list(TABLES)
    create_schema(engine)
    create_schema(engine)
    assert table_counts(engine) == dict.fromkeys(TABLES, 0)


def test_table_counts_without_schema_names_the_fix(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="create_schema"):
        table_counts(make_engine(sqlite_url))


@pytest.mark.parametrize(
    ("url", "expected"),
    [("not a url", "not a SQLAlchemy URL"), ("mysql://user@host/db", "unsupported driver 'mysql'")],
)
def test_bad_urls_are_rejected_with_the_fix(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as error:
        make_engine(url)
    assert "postgresql+psycopg://" in str(error.value)


def test_sqlite_path_that_cannot_exist_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="writable place"):
        make_engine(f"sqlite:///{tmp_path / 'file' / 'source.db'}")


def test_malformed_url_error_hides_credentials() -> None:
    with pytest.raises(ValueError, match="not a SQLAlchemy URL") as error:
        make_engine("postgresql://bob:hunter2@db:port/shop")
    assert "hunter2" not in str(error.value) and "***@db" in str(error.value)


def test_postgres_urls_are_pinned_to_psycopg3() -> None:
    assert parse_source_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_source_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_unreachable_server_names_url_without_password() -> None:
    with pytest.raises(ValueError, match="cannot connect to the source DB") as error:
        make_engine("postgresql+psycopg://shop:s3cret@127.0.0.1:1/shop")
    message = str(error.value)
    assert "s3cret" not in message
    assert "shop:***@127.0.0.1:1/shop" in message
    assert "server is running" in message


def test_insert_columns_rounds_numerics_and_writes_nulls(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    with engine.begin() as conn:
        written = insert_columns(
            conn,
            "products",
            {
                "product_id": np.array([1, 2]),
                "sku": np.array(["A-1", "A-2"], dtype=object),
                "category": np.array(["books", "toys"], dtype=object),
                "unit_price": np.array([9.999, 12.5]),
                "weight_kg": np.array([np.nan, 0.12345]),
                "is_fragile": np.array([True, False]),
                "updated_at": np.array([0, 86_400 + 61]),
            },
        )
    assert written == 2
    with engine.connect() as conn:
        rows = conn.execute(select(products).order_by(products.c.product_id)).all()
    assert rows[0].unit_price == Decimal("10.00") and rows[0].weight_kg is None and rows[0].is_fragile is True
    assert rows[1].weight_kg == Decimal("0.123")
    assert rows[1].updated_at.isoformat() == "1970-01-02T00:01:01"


def test_insert_columns_rejects_unknown_columns(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    with engine.begin() as conn, pytest.raises(ValueError, match="no columns"):
        insert_columns(conn, "products", {"colour": np.array(["red"], dtype=object)})


def test_missing_postgres_binaries_name_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_server.shutil, "which", lambda _name: None)
    monkeypatch.setattr(pg_server.glob, "glob", lambda _pattern: [])
    with pytest.raises(pg_server.PostgresUnavailable, match="run `make test`"):
        pg_server.find_bindir()


@pytest.mark.postgres
def test_postgres_engine_schema_and_reset(postgres_db_url: str) -> None:
    engine = make_engine(postgres_db_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.dialect.driver == "psycopg"
    create_schema(engine)
    create_schema(engine)
    assert table_counts(engine) == dict.fromkeys(TABLES, 0)
    reset_schema(engine)
    assert missing_tables(engine) == []
    engine.dispose()
