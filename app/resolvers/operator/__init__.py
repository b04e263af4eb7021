"""The operator API (``/operator/graphql``): the vendor's staff and systems provision environments and
users, manage coupons and webhook endpoints, and watch operations. A schema of its own (``operator.graphql``),
never merged into the one partners explore at ``/graphql``."""
