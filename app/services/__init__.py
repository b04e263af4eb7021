"""The business rules of DESIGN.md, as plain async Python: no GraphQL imports here."""
