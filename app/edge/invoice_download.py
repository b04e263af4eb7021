"""``GET /invoices/{number}.pdf``: the PDF of an issued invoice, for the tenant's admins only (issue 14).

The caller is authenticated exactly as on ``/graphql`` (the request ``Context``'s ``principal``: API
keys, user tokens, IdP tokens, through the app's credential cache). Answers, as JSON errors shaped like
the API's (``{"errors": [{"message", "extensions": {"code"}}]}``): 401 without or with bad credentials,
403 for a member or an API key, 404 for an unknown number or another tenant's (the same answer: numbers
leak nothing), 429 over the caller's request budget (the same bucket as its ``/graphql`` requests).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.edge.rate_limit import RateLimited, caller_of, charge, client_address
from app.models.invoices import IssuedInvoice
from app.resolvers.context import Context
from app.services.errors import ErrorCode, Unauthenticated
from app.services.invoice_pdf import pdf_of
from app.services.issued_invoices import plausible_number


def error(status: int, code: ErrorCode, message: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tollgate"'
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status, headers=headers
    )


async def invoice_pdf_endpoint(request: Request) -> Response:
    context = Context(
        request=request,
        response=None,
        settings=request.app.state.settings,
        clock=request.app.state.clock,
        services=request.app.state.services,
    )
    graphql = request.app.state.graphql
    refusal: Response | None = None
    try:
        principal = await context.principal()
    except Unauthenticated as failure:
        principal = None
        refusal = error(401, ErrorCode.UNAUTHENTICATED, failure.localized(context.current_locale()))
    try:  # charged like a /graphql request: to the verified caller, else to the address
        address = client_address(request.scope, graphql.trusted_proxies)
        await charge(graphql.rate_limiter, caller_of(principal, address))
    except RateLimited as refused:
        response = JSONResponse({"errors": [refused.error(context.current_locale())]}, status_code=429)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    if refusal is not None:
        return refusal
    if principal is None:
        return error(401, ErrorCode.UNAUTHENTICATED, "Use 'Authorization: Bearer <token>'.")
    if not principal.is_admin:
        return error(403, ErrorCode.FORBIDDEN, "Only the environment's admins may download its invoices.")
    number = str(request.path_params["number"])
    invoice = None
    if plausible_number(number):
        invoice = await IssuedInvoice.get_or_none(number=number, tenant_id=principal.tenant.id)
    if invoice is None:
        return error(404, ErrorCode.NOT_FOUND, "This environment has no invoice with this number.")
    invoice.tenant = principal.tenant
    content = await pdf_of(invoice)
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{invoice.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
