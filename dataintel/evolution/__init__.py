"""Schema evolution: classifying schema changes, the release gate, documents against a schema."""
