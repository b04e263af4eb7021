"""API key scopes (docs/security.md, "Who may read what: scopes")."""

from __future__ import annotations

USAGE_REPORT = "usage:report"
QUOTA_CHECK = "quota:check"
PROCESS_START = "process:start"
CATALOG_READ = "catalog:read"
TENANT_READ = "tenant:read"  # a partner's read-only access to its own tenant

ALL_SCOPES = frozenset({USAGE_REPORT, QUOTA_CHECK, PROCESS_START, CATALOG_READ, TENANT_READ})
CONNECTOR_SCOPES = (USAGE_REPORT, QUOTA_CHECK, PROCESS_START)
PARTNER_SCOPES = (CATALOG_READ, TENANT_READ)
