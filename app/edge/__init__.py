"""The HTTP edge: what stands between a client and the schema.

``graphql_app`` (the Strawberry view: context, authentication of WebSockets, request shapes),
``fast_path`` (compiled documents), ``query_limits``, ``rate_limit``, ``request_size``, ``live_sessions``
(WebSockets that end with their credentials), ``persisted_queries``, ``response_cache`` (the public
catalog's answers) and ``graphiql``.
"""
