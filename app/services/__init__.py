"""The business rules of docs/design.md, as plain async Python: no GraphQL imports here."""
