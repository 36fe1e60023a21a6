"""Load-test kit: seeding, an open-model load generator, profiles, invariant checks, plots."""
