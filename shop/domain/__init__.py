"""Business rules of the shop: no Flask, no SQLAlchemy."""
