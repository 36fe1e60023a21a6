"""Data layer: engine and pool, repositories (all SQL lives here), unit of work, migrations."""
