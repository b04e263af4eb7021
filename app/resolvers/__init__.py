"""The GraphQL layer: one module per domain with its types, queries and mutations. Thin by design."""
