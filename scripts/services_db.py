"""PostgreSQL databases of the production profile: Airflow's and Optuna's.

Both live on the same server (``CTR_PG_URL``), each in its own database
(``CTR_AIRFLOW_DB``, ``CTR_OPTUNA_DB``); ``make airflow`` creates a missing one. Only the
server's catalog (``pg_database``) is read: never a table of Airflow's.
"""

from __future__ import annotations

from typing import Any

from scripts.services_config import ServicesError

#: The variable the tuning code reads for Optuna's RDB storage (absent: journal file).
TUNING_STORAGE_VAR = "CTR_TUNING_STORAGE"


def _connect_args(sqlalchemy_url: str) -> tuple[dict[str, Any], str]:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url.removeprefix("db+"))
    if not url.database:
        raise ServicesError(f"the PostgreSQL URL {url!r} names no database")
    args = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "dbname": "postgres",
    }
    return {k: v for k, v in args.items() if v is not None}, url.database


def _server_connection(sqlalchemy_url: str) -> tuple[Any, str]:
    import psycopg2

    args, name = _connect_args(sqlalchemy_url)
    try:
        conn = psycopg2.connect(**args)
    except psycopg2.OperationalError as exc:
        raise ServicesError(
            f"cannot connect to PostgreSQL at {args['host']}:{args['port']} as {args['user']}: "
            f"{str(exc).strip()}; start PostgreSQL or fix CTR_PG_URL / the profile's URLs"
        ) from None
    conn.autocommit = True
    return conn, name


def ensure_postgres_database(sqlalchemy_url: str) -> bool:
    """Create the database named in ``sqlalchemy_url`` if it does not exist.

    Returns:
        True when it was created.
    """
    from psycopg2 import sql

    conn, name = _server_connection(sqlalchemy_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def drop_postgres_database(sqlalchemy_url: str) -> None:
    """Drop the database named in ``sqlalchemy_url`` (closing its connections)."""
    from psycopg2 import sql

    conn, name = _server_connection(sqlalchemy_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def hide_password(sqlalchemy_url: str) -> str:
    """The URL with its password masked (for messages and logs)."""
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).render_as_string(hide_password=True)
