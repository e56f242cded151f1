"""The portal's routes: pages (HTML) and the JSON API behind each, from one app factory.

Every route declares its scope as a dependency (``auth.py``): ``current_principal`` (signed in or a token),
``provider_only``, ``customer_in_scope`` (the path's customer is visible, else 404), ``run_in_scope``.  A page and
its ``/api`` twin call the same function in ``queries.py``; ``docs/PORTAL.md`` lists the API.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from engine.history import HistoryStore
from engine.portal import auth, charts, queries, sla
from engine.portal.auth import Principal, current_principal, customer_in_scope, environment_name, provider_only, run_in_scope, visible_customers
from engine.portal.settings import PortalSettings
from engine.results import SECRET_MASK

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "engine_portal"
PAGE_SIZE = 200
MAX_RUNS = 1000


@dataclass
class PortalContext:
    settings: PortalSettings
    store: HistoryStore
    tenants: queries.TenantSource
    outputs: queries.OutputsCache
    sla_policy: Path
    clock: Callable[[], dt.datetime]


def create_app(settings: PortalSettings, store: HistoryStore, catalog_root: Path, home_root: Path, *,
               outputs_reader: queries.OutputsReader | None = None, tenants: queries.TenantSource | None = None,
               sla_policy: Path | None = None, clock: Callable[[], dt.datetime] | None = None,
               oauth_transport=None) -> FastAPI:
    """The portal over ``store`` and the catalog at ``catalog_root``.  ``settings`` must have passed ``checked()``."""
    settings = settings.checked().with_session_key() if settings.local_sign_in else settings.checked()
    store.keep_connections()  # a connection per request thread, not per query
    app = FastAPI(title="Managed Infrastructure Engine portal", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = PortalContext(
        settings=settings, store=store,
        tenants=tenants or queries.TenantSource(catalog_root, home_root, settings.cost_refresh_s),
        outputs=queries.OutputsCache(outputs_reader or queries.engine_outputs(catalog_root, home_root)),
        sla_policy=sla_policy or Path(catalog_root) / "policy" / "sla.yml",
        clock=clock or (lambda: dt.datetime.now(dt.timezone.utc)))
    app.state.oauth_transport = oauth_transport
    app.add_middleware(SessionMiddleware, secret_key=settings.session_key, session_cookie=SESSION_COOKIE,
                       max_age=int(settings.session_hours * 3600), same_site="lax", https_only=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                                                "script-src 'none'; frame-ancestors 'none'; form-action 'self' "
                                    + settings.github_server_url)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(auth.NotSignedIn)
    async def not_signed_in(request: Request, _exc):
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": "sign in, or send an API token (Authorization: Bearer …)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api") or exc.status_code == 401:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail, "me": None},
                                          status_code=exc.status_code)

    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    templates.env.filters["hours"] = lambda v: "—" if v is None else f"{v:.1f} h"
    templates.env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    templates.env.filters["money"] = lambda v: "—" if v is None else f"{v:,.2f}"
    templates.env.filters["output"] = _output_value
    templates.env.globals["SECRET_MASK"] = SECRET_MASK
    app.state.templates = templates

    app.include_router(_auth_router(templates))
    app.include_router(_pages(templates))
    app.include_router(_api())
    return app


def _when(value: str | None) -> str:
    return "—" if not value else value[:16].replace("T", " ") + " UTC"


def _output_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _ctx(request: Request) -> PortalContext:
    return request.app.state.portal


def _page(templates: Jinja2Templates, request: Request, name: str, me: Principal | None, **data) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"me": me, "csrf": auth.csrf_token(request), **data})


def _safe_next(target: str | None) -> str:
    """Only a path of this portal (never //host or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- sign-in --------------------------------------------------------------------------------------------


def _auth_router(templates: Jinja2Templates) -> APIRouter:
    router = APIRouter()

    @router.get("/signin", response_class=HTMLResponse)
    def signin(request: Request, next: str = "/"):  # noqa: A002 - the query parameter's name
        ctx = _ctx(request)
        return _page(templates, request, "signin.html", None, next=_safe_next(next), settings=ctx.settings,
                     customers=sorted(ctx.tenants.tenants.by_id) if ctx.settings.local_sign_in else [], error=request.query_params.get("error"))

    @router.get("/auth/github")
    def github_start(request: Request, next: str = "/"):  # noqa: A002
        settings = _ctx(request).settings
        if not settings.github_sign_in:
            raise HTTPException(404, "GitHub sign-in is not configured")
        state = secrets.token_urlsafe(24)
        request.session["oauth_state"] = state
        request.session["oauth_next"] = _safe_next(next)
        return RedirectResponse(auth.authorize_url(settings, state), status_code=303)

    @router.get("/auth/github/callback")
    def github_callback(request: Request, code: str = "", state: str = ""):
        ctx = _ctx(request)
        if not ctx.settings.github_sign_in:
            raise HTTPException(404, "GitHub sign-in is not configured")
        expected = request.session.pop("oauth_state", None)
        target = _safe_next(request.session.pop("oauth_next", "/"))
        import hmac

        if not expected or not state or not hmac.compare_digest(expected.encode(), state.encode()) or not code:
            raise HTTPException(403, "this sign-in did not start here (state mismatch); start again from the sign-in page")
        try:
            token = auth.exchange_code(ctx.settings, code, request.app.state.oauth_transport)
            principal = auth.github_principal(ctx.settings, token, ctx.tenants.tenants.repository_owner())
        except auth.SignInFailed as exc:
            return RedirectResponse(f"/signin?error={quote(exc.message)}", status_code=303)
        del token  # never kept
        auth.start_session(request, principal)
        return RedirectResponse(target, status_code=303)

    @router.post("/auth/local", dependencies=[Depends(auth.local_request), Depends(auth.checked_csrf)])
    def local_signin(request: Request, who: str = Form(...), next: str = Form("/")):  # noqa: A002
        tenants = _ctx(request).tenants.tenants
        if who == "provider":
            principal = Principal("local-provider", True, frozenset(), "local")
        elif who.startswith("customer:") and who.split(":", 1)[1] in tenants.by_id:
            customer = who.split(":", 1)[1]
            principal = Principal(f"local-{customer}", False, frozenset({customer}), "local")
        else:
            raise HTTPException(400, "choose the provider or a customer")
        auth.start_session(request, principal)
        return RedirectResponse(_safe_next(next), status_code=303)

    @router.post("/signout", dependencies=[Depends(auth.checked_csrf)])
    def signout(request: Request):
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    @router.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

    return router


# -- shared reads (page and API) -------------------------------------------------------------------------


def _period(request: Request, start: str | None, end: str | None, days: int | None) -> sla.Period:
    now = _ctx(request).clock()
    try:
        until = dt.datetime.fromisoformat(end).replace(tzinfo=dt.timezone.utc) if end else now
        since = dt.datetime.fromisoformat(start).replace(tzinfo=dt.timezone.utc) if start else until - dt.timedelta(days=days or 30)
    except ValueError:
        raise HTTPException(400, "from and to are dates: YYYY-MM-DD") from None
    if end and len(end) <= 10:
        until += dt.timedelta(days=1)  # a date names the whole day
    if not since < until or (until - since).days > 731:
        raise HTTPException(400, "the period must start before it ends and span at most two years")
    return sla.Period(since, until)


def _sla_report(request: Request, principal: Principal, customers: list[str], period: sla.Period, only: str | None) -> dict:
    ctx = _ctx(request)
    if only is not None:
        if only not in customers:
            raise HTTPException(404, "no such customer")
        customers = [only]
    policy = sla.load_policy(ctx.sla_policy)
    rows = queries.sla_rows(ctx.store, period, None if principal.provider and only is None else customers)
    return sla.report(rows, period, policy, customers, fleet=principal.provider and only is None, now=ctx.clock())


def _run_filter(request: Request, environment: str | None, operation: str | None, status: str | None, start: str | None,
                end: str | None) -> queries.RunFilter:
    for value in (environment, operation, status):
        if value and not auth.ENVIRONMENT.fullmatch(value):
            raise HTTPException(400, "filters are names: lower-case letters, digits and '-'")
    period = _period(request, start, end, 3650) if (start or end) else None
    return queries.RunFilter(environment or None, operation or None, status or None, period.start if period and start else None,
                             period.end if period and end else None)


def _csv(rows: list[list], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: no formula can start it (=, +, -, @, tab, CR)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _stack_data(request: Request, customer: str, environment: str) -> dict:
    ctx = _ctx(request)
    view = queries.customer(ctx.store, ctx.tenants.tenants, customer, ctx.clock())
    stack = next((s for s in view["stacks"] if s["environment"] == environment), None)
    if stack is None:
        raise HTTPException(404, "no such environment")
    outputs = ctx.outputs.get(customer, environment)
    return {"customer": customer, "environment": environment, "stack": stack, "outputs": outputs,
            "runs": queries.stack_runs(ctx.store, customer, environment, 20)}


# -- pages ------------------------------------------------------------------------------------------------


def _pages(templates: Jinja2Templates) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(me: Principal = Depends(current_principal), customers: list[str] = Depends(visible_customers)):
        if me.provider:
            return RedirectResponse("/fleet", status_code=303)
        if len(customers) == 1:
            return RedirectResponse(f"/customers/{customers[0]}", status_code=303)
        return RedirectResponse("/customers", status_code=303)

    @router.get("/fleet", response_class=HTMLResponse)
    def fleet_page(request: Request, me: Principal = Depends(provider_only), state: str | None = None, page: int = Query(1, ge=1)):
        ctx = _ctx(request)
        data = queries.fleet(ctx.store, ctx.tenants.tenants, ctx.clock(), state or None, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        pages = max(1, -(-data["total"] // PAGE_SIZE))
        return _page(templates, request, "fleet.html", me, data=data, customers=data["customers"], state=state, page=min(page, pages),
                     pages=pages, shown=data["total"])

    @router.get("/customers", response_class=HTMLResponse)
    def customers_page(request: Request, me: Principal = Depends(current_principal), customers: list[str] = Depends(visible_customers)):
        tenants = _ctx(request).tenants.tenants
        return _page(templates, request, "customers.html", me, customers=[tenants.by_id[c] for c in customers])

    @router.get("/customers/{customer}", response_class=HTMLResponse)
    def customer_page(request: Request, customer: str = Depends(customer_in_scope), me: Principal = Depends(current_principal)):
        ctx = _ctx(request)
        return _page(templates, request, "customer.html", me, data=queries.customer(ctx.store, ctx.tenants.tenants, customer, ctx.clock()))

    @router.get("/customers/{customer}/stacks/{environment}", response_class=HTMLResponse)
    def stack_page(request: Request, customer: str = Depends(customer_in_scope), environment: str = Depends(environment_name),
                   me: Principal = Depends(current_principal)):
        return _page(templates, request, "stack.html", me, data=_stack_data(request, customer, environment))

    @router.get("/customers/{customer}/runs", response_class=HTMLResponse)
    def runs_page(request: Request, customer: str = Depends(customer_in_scope), me: Principal = Depends(current_principal),
                  environment: str | None = None, operation: str | None = None, status: str | None = None,
                  start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"), page: int = Query(1, ge=1)):
        ctx = _ctx(request)
        flt = _run_filter(request, environment, operation, status, start, end)
        rows = queries.runs(ctx.store, customer, flt, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
        return _page(templates, request, "runs.html", me, customer=customer, runs=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                     filters={"environment": environment or "", "operation": operation or "", "status": status or "", "from": start or "",
                              "to": end or ""}, operations=queries.RUN_OPERATIONS, query=request.url.query)

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, row: dict = Depends(run_in_scope), me: Principal = Depends(current_principal)):
        return _page(templates, request, "run.html", me, run=row)

    @router.get("/usage", response_class=HTMLResponse)
    def usage_page(request: Request, me: Principal = Depends(provider_only), customers: list[str] = Depends(visible_customers)):
        ctx = _ctx(request)
        return _page(templates, request, "usage.html", me, data=queries.usage(ctx.store, ctx.tenants.tenants, customers, ctx.clock()))

    @router.get("/sla", response_class=HTMLResponse)
    def sla_page(request: Request, me: Principal = Depends(current_principal), customers: list[str] = Depends(visible_customers),
                 start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                 days: int = Query(30, ge=1, le=731), customer: str | None = None):
        period = _period(request, start, end, days)
        data = _sla_report(request, me, customers, period, customer or None)
        return _page(templates, request, "sla.html", me, data=data, charts=_sla_charts(data), query=request.url.query,
                     selected=customer or "", customers=customers, period_input={"from": start or period.start.strftime("%Y-%m-%d"),
                                                                                 "to": end or (period.end - dt.timedelta(seconds=1)).strftime("%Y-%m-%d")})

    return router


def _sla_charts(data: dict) -> dict[str, str]:
    weeks = data["weekly"]
    labels = [w["from"][5:] for w in weeks]
    names = sorted(data["customers"])
    out = {"deployments": charts.bars("Deployments per week (failed in red)", labels, [w["deployments"] for w in weeks],
                                      [w["failed"] for w in weeks], legend=("succeeded", "failed"), unit="deployments"),
           "lead_time": charts.bars("Median lead time per week", labels, [w["lead_time_hours"] for w in weeks],
                                    target=(data.get("fleet") or {}).get("targets", {}).get("lead_time_hours"), unit="hours")}
    for key in ("change_failure_rate", "time_to_restore_hours", "pipeline_availability"):
        label, unit, good = data["measures"][key]["label"], data["measures"][key]["unit"], data["measures"][key]["good"]
        targets = [data["customers"][c]["targets"].get(key) for c in names]
        target = targets[0] if targets and all(t == targets[0] for t in targets) else None
        out[key] = charts.hbars(f"{label} per customer", names[:40], [data["customers"][c][key] for c in names[:40]], target, good, unit)
    return out


# -- the JSON API ------------------------------------------------------------------------------------------


def _api() -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/me", summary="Who is asking and what they may see")
    def me(principal: Principal = Depends(current_principal)):
        return principal.to_dict()

    @router.get("/fleet", summary="Customers × environments, failing and drifted first, with usage (provider)")
    def fleet(request: Request, _me: Principal = Depends(provider_only), state: str | None = None,
              limit: int = Query(PAGE_SIZE, ge=1, le=5000), offset: int = Query(0, ge=0)):
        ctx = _ctx(request)
        return JSONResponse(queries.fleet(ctx.store, ctx.tenants.tenants, ctx.clock(), state or None, offset, limit))

    @router.get("/customers", summary="The customers you may see")
    def customers(request: Request, visible: list[str] = Depends(visible_customers)):
        tenants = _ctx(request).tenants.tenants
        return {"customers": [{"customer": c, "display_name": tenants.by_id[c].display_name, "repository": tenants.by_id[c].repository,
                               "environments": list(tenants.by_id[c].environments)} for c in visible]}

    @router.get("/customers/{customer}", summary="One customer: stacks, open drift, compliance, usage")
    def customer(request: Request, customer: str = Depends(customer_in_scope)):
        ctx = _ctx(request)
        return queries.customer(ctx.store, ctx.tenants.tenants, customer, ctx.clock())

    @router.get("/customers/{customer}/stacks/{environment}", summary="One stack: state, last runs with plan summaries, outputs (secrets masked)")
    def stack(request: Request, customer: str = Depends(customer_in_scope), environment: str = Depends(environment_name)):
        return _stack_data(request, customer, environment)

    @router.get("/customers/{customer}/runs", summary="The customer's runs, newest first, filtered")
    def runs(request: Request, customer: str = Depends(customer_in_scope), environment: str | None = None, operation: str | None = None,
             status: str | None = None, start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
             limit: int = Query(50, ge=1, le=MAX_RUNS), offset: int = Query(0, ge=0)):
        ctx = _ctx(request)
        flt = _run_filter(request, environment, operation, status, start, end)
        return {"customer": customer, "runs": queries.runs(ctx.store, customer, flt, limit, offset), "offset": offset}

    @router.get("/customers/{customer}/runs.csv", summary="The same runs as CSV")
    def runs_csv(request: Request, customer: str = Depends(customer_in_scope), environment: str | None = None, operation: str | None = None,
                 status: str | None = None, start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                 limit: int = Query(MAX_RUNS, ge=1, le=10000)):
        ctx = _ctx(request)
        rows = queries.runs(ctx.store, customer, _run_filter(request, environment, operation, status, start, end), limit)
        head = ["id", "started_at", "finished_at", "customer", "environment", "tool", "operation", "status", "create", "update", "delete",
                "replace", "same", "duration_s", "actor", "sha", "committed_at", "error", "run_url"]
        body = [[r["id"], r["started_at"], r["finished_at"], r["customer"], r["environment"], r["tool"], r["operation"], r["status"],
                 *[r["changes"][k] for k in ("create", "update", "delete", "replace", "same")], r["duration_s"], r["actor"], r["sha"],
                 r["committed_at"], r["error"], r["run_url"]] for r in rows]
        return _csv([head, *body], f"{customer}-runs.csv")

    @router.get("/runs/{run_id}", summary="One run with its plan summary")
    def run(row: dict = Depends(run_in_scope)):
        return row

    @router.get("/usage", summary="Usage per customer: deploys per week, resources under management, monthly cost (provider)")
    def usage(request: Request, _me: Principal = Depends(provider_only), visible: list[str] = Depends(visible_customers)):
        ctx = _ctx(request)
        return queries.usage(ctx.store, ctx.tenants.tenants, visible, ctx.clock())

    @router.get("/usage.csv", summary="The same usage as CSV (provider)")
    def usage_csv(request: Request, _me: Principal = Depends(provider_only), visible: list[str] = Depends(visible_customers)):
        ctx = _ctx(request)
        data = queries.usage(ctx.store, ctx.tenants.tenants, visible, ctx.clock())
        head = ["customer", "environments", "deploys_per_week", "resources", f"monthly_cost_{data['currency']}", "cost_complete"]
        return _csv([head, *[[c["customer"], c["environments"], c["deploys_per_week"], c["resources"], c["monthly_cost"], c["cost_complete"]]
                             for c in data["customers"]]], "usage.csv")

    @router.get("/sla", summary="The SLA report for a period: per customer you may see, and fleet-wide for the provider")
    def sla_json(request: Request, principal: Principal = Depends(current_principal), visible: list[str] = Depends(visible_customers),
                 start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                 days: int = Query(30, ge=1, le=731), customer: str | None = None):
        return _sla_report(request, principal, visible, _period(request, start, end, days), customer or None)

    @router.get("/sla.csv", summary="The same SLA report as CSV: one row per customer (and the fleet)")
    def sla_csv(request: Request, principal: Principal = Depends(current_principal), visible: list[str] = Depends(visible_customers),
                start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                days: int = Query(30, ge=1, le=731), customer: str | None = None):
        data = _sla_report(request, principal, visible, _period(request, start, end, days), customer or None)
        names = list(sla.MEASURES)
        head = ["scope", "from", "to", *names, *[f"{n}_target" for n in names], *[f"{n}_met" for n in names],
                "deployments", "failed_deployments", "unrestored", "drift_incidents", "drift_unresolved"]
        scopes = [("fleet", data["fleet"])] if "fleet" in data else []
        scopes += sorted(data["customers"].items())
        body = [[scope, data["period"]["from"], data["period"]["to"], *[m[n] for n in names], *[m["targets"][n] for n in names],
                 *[m["met"][n] for n in names], m["deployments"], m["failed_deployments"], m["unrestored"], m["drift_incidents"],
                 m["drift_unresolved"]] for scope, m in scopes]
        return _csv([head, *body], "sla.csv")

    @router.get("/openapi.json", summary="This API, described (OpenAPI 3)")
    def openapi(request: Request, _me: Principal = Depends(current_principal)):
        schema = request.app.openapi()
        return {**schema, "paths": {path: ops for path, ops in schema["paths"].items() if path.startswith("/api")}}

    return router
