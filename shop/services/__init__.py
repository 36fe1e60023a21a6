"""Use cases: one verb each, one unit of work each."""
