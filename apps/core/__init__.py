"""Small pieces every app shares: the base error and the job row. Not a Django app (no tables)."""
