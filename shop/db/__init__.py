"""Data layer: engine and pool, statements and transactions, repositories (all SQL lives
here), unit of work, migrations, and the embedded PostgreSQL.

Repositories send their SQL as written, with psycopg's ``%(name)s`` placeholders, on a
psycopg cursor (statements.py); SQLAlchemy keeps the pool and runs migrations. psycopg
prepares each statement after its fifth use (``prepare_threshold``), except behind
PgBouncer. What each choice cost or saved is in ammo/RESULTS.md.
"""
