"""Persisted queries: Apollo's automatic persisted queries (APQ), and an allow-list mode.

APQ: a client sends ``extensions.persistedQuery.sha256Hash`` without the document; if this instance
knows the hash it runs it, else it answers ``PERSISTED_QUERY_NOT_FOUND`` and the client retries with
the document and the hash, which registers it. Instances keep their own bounded registry: a miss only
costs one retry, so no shared store is needed.

Allow-list mode (locked-down deployments): only the documents of the persisted-queries file run,
sent by hash or in full; anything else is refused with ``PERSISTED_QUERY_NOT_ALLOWED``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.http import GraphQLRequestData

from app.i18n import Text, _
from app.services.errors import ErrorCode


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str | Text) -> None:
        super().__init__(str(message))
        self.code = code
        self.text = message
        self.message = str(message)


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """A JSON object of documents by their SHA-256 (a list of documents is accepted too)."""
    content: Any = orjson.loads(path.read_bytes())
    documents = content.values() if isinstance(content, dict) else content
    manifest = {document_hash(document): document for document in documents}
    if isinstance(content, dict):
        wrong = [key for key, document in content.items() if document_hash(document) != key]
        if wrong:
            raise ValueError(f"{path}: entries whose key is not the SHA-256 of their document: {wrong[:3]}")
    return manifest


class PersistedQueries:
    def __init__(
        self, *, manifest: dict[str, str] | None = None, allowlist_only: bool = False, capacity: int = 5000
    ):
        self.manifest = manifest or {}
        self.allowlist_only = allowlist_only
        self.capacity = capacity
        self._registered: OrderedDict[str, str] = OrderedDict()

    def resolve(self, request: GraphQLRequestData) -> GraphQLRequestData:
        """The request with its document filled in from the hash, or ``PersistedQueryError``."""
        persisted = (request.extensions or {}).get("persistedQuery")
        sha = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if persisted is not None and (not isinstance(sha, str) or persisted.get("version") != 1):
            raise PersistedQueryError(
                ErrorCode.PERSISTED_QUERY_INVALID, _("persistedQuery needs version 1 and a sha256Hash.")
            )
        if request.query is None:
            if sha is None:
                return request  # Strawberry answers "no query" itself
            document = self.manifest.get(sha) or self._lookup(sha)
            if document is None:
                if self.allowlist_only:
                    raise PersistedQueryError(
                        ErrorCode.PERSISTED_QUERY_NOT_ALLOWED, _("This operation is not allowed here.")
                    )
                # The message clients match on (Apollo's protocol): never translated.
                raise PersistedQueryError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return replace(request, query=document)
        if sha is not None:
            if sha != document_hash(request.query):
                raise PersistedQueryError(
                    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH, _("sha256Hash is not the hash of the query.")
                )
            if not self.allowlist_only:  # in allow-list mode only the manifest counts
                self._register(sha, request.query)
        return request

    def _lookup(self, sha: str) -> str | None:
        document = self._registered.get(sha)
        if document is not None:
            self._registered.move_to_end(sha)
        return document

    def _register(self, sha: str, document: str) -> None:
        self._registered[sha] = document
        self._registered.move_to_end(sha)
        while len(self._registered) > self.capacity:
            self._registered.popitem(last=False)


def allowlist_rule(allowed_hashes: frozenset[str]) -> type[ASTValidationRule]:
    """A validation rule refusing any document outside the allow-list, over HTTP and WebSocket alike."""

    class OnlyAllowListedDocuments(ASTValidationRule):
        def enter_document(self, node: DocumentNode, *_args: Any) -> None:
            source = node.loc.source.body if node.loc is not None else ""
            if document_hash(source) not in allowed_hashes:
                self.report_error(
                    GraphQLError(
                        "This operation is not in the allow-list of this gateway.",
                        extensions={"code": ErrorCode.PERSISTED_QUERY_NOT_ALLOWED},
                    )
                )

    return OnlyAllowListedDocuments
