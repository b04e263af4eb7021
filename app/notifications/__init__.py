"""E-mail through a transactional outbox, and (later) live alert broadcasting."""
