"""`resources.one_statement` on real PostgreSQL: a statement that is its own transaction,
on an autocommit connection (the API's pool, the consumers, the flows) and on any other."""

from __future__ import annotations

import psycopg
import pytest

from common.resources import assignment_connection, one_statement


@pytest.mark.parametrize("autocommit", [True, False])
def test_one_statement_commits_and_leaves_no_transaction_open(settings, autocommit):
    with assignment_connection(settings, autocommit=autocommit) as conn, \
            assignment_connection(settings, autocommit=True) as other:
        with one_statement(conn) as cur:
            cur.execute("INSERT INTO users (id, username, name, role, region, password_hash) "
                        "VALUES (4242, 'one.statement', 'One Statement', 'operator', 'EU', "
                        "'x')")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert other.execute("SELECT username FROM users WHERE id = 4242").fetchone() == \
            {"username": "one.statement"}


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_failing_statement_leaves_the_connection_usable(settings, autocommit):
    with assignment_connection(settings, autocommit=autocommit) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable), one_statement(conn) as cur:
            cur.execute("SELECT * FROM no_such_table")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with one_statement(conn) as cur:
            assert cur.execute("SELECT 1 AS one").fetchone() == {"one": 1}
