"""Who is calling: user JWTs and machine API keys (GraphQL-free)."""
