"""Application logic that touches the database and storage."""
