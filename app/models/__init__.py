"""Tortoise models, one module per domain. ``MODEL_MODULES`` is what Tortoise loads."""

MODEL_MODULES = [
    "app.models.tenancy",
    "app.models.catalog",
    "app.models.billing",
    "app.models.coupons",
    "app.models.notifications",
    "app.models.audit",
    "app.models.usage",
    "app.models.metering",
    "app.models.store",
    "app.models.operators",
    "app.models.webhooks",
    "app.models.quotes",
    "app.models.invoices",
]
