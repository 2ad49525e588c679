"""OAuth of the Gusto emulator: consent page, token exchange, revocation, token introspection.

Sources: the authorization-code flow (https://docs.gusto.com/app-integrations/docs/oauth2;
code expiry 10 minutes, http://docs.gusto.com/v1/examples/authentication), token lifetime,
format and the secret-in-URL rule (https://docs.gusto.com/embedded-payroll/docs/company-access-tokens),
and the spec's ``/oauth/token`` (refresh rotation), ``/oauth/revoke`` and ``Token-Info``.
"""
from __future__ import annotations

import html
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, g, redirect, request

from .common import config, deliverer, gusto_json, request_json, requires, world
from .world import ADMIN_UUID, APPLICATION_UUID, COMPANY_UUID

blueprint = Blueprint("gusto_oauth", __name__)


def with_query(url: str, params: dict) -> str:
    """``url`` with ``params`` appended to (not replacing) its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def oauth_error(status: int, error: str, description: str) -> Response:
    """An OAuth error ``{"error", "error_description"}``. ASSUMPTION: the RFC 6749 §5.2 body
    (Gusto runs Doorkeeper); the wording is ours."""
    return gusto_json({"error": error, "error_description": description}, status)


def _authorize_params(src) -> tuple[dict, Response | None]:
    cfg = config()
    params = {k: src.get(k, "") for k in ("client_id", "redirect_uri", "state", "response_type")}
    if params["client_id"] != cfg["client_id"]:
        return params, Response("<h1>Unknown client_id</h1>", 400, mimetype="text/html")
    if not params["redirect_uri"] or (cfg["redirect_uris"] is not None
                                      and params["redirect_uri"] not in cfg["redirect_uris"]):
        return params, Response("<h1>Invalid redirect_uri</h1>", 400, mimetype="text/html")
    return params, None


def _grant_code(params: dict, company_uuid: str) -> Response:
    w = world()
    code = secrets.token_urlsafe(32)
    with w.lock:
        w.codes[code] = {"client_id": params["client_id"], "redirect_uri": params["redirect_uri"],
                         "company_uuid": company_uuid, "used": False,
                         "expires_at": w.now() + float(config()["code_ttl"])}
    query = {"code": code}
    if params.get("state"):
        query["state"] = params["state"]
    return redirect(with_query(params["redirect_uri"], query), code=302)


@blueprint.get("/oauth/authorize")
def oauth_authorize_page():
    """Consent page of the authorize URL ``GET /oauth/authorize?client_id&redirect_uri&
    response_type=code[&state]`` (https://docs.gusto.com/app-integrations/docs/oauth2): an HTML
    form listing the companies. Unknown client or redirect URI → 400 HTML; a response_type
    other than ``code`` → 302 with ``error=unsupported_response_type``; with ``auto_approve``
    → 302 at once with a code for the example company."""
    params, err = _authorize_params(request.args)
    if err is not None:
        return err
    if params["response_type"] != "code":
        return redirect(with_query(params["redirect_uri"], {
            "error": "unsupported_response_type", "state": params["state"]}), code=302)
    if config()["auto_approve"]:
        return _grant_code(params, COMPANY_UUID)
    w = world()
    with w.lock:
        companies = [(c["uuid"], c["name"]) for c in w.companies.values()]
    options = "".join(
        f'<label><input type="radio" name="company_uuid" value="{html.escape(cid)}"'
        f'{" checked" if i == 0 else ""}> {html.escape(name)}</label><br>'
        for i, (cid, name) in enumerate(companies))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(params[k])}">'
                     for k in ("client_id", "redirect_uri", "state"))
    page = ("<!doctype html><title>Gusto (sandbox) - authorize</title>"
            "<h1>Allow access to your Gusto account?</h1>"
            '<form method="post" action="/oauth/authorize">'
            f"{hidden}{options}<button type=\"submit\">Allow</button></form>")
    return Response(page, 200, mimetype="text/html")


@blueprint.post("/oauth/authorize")
def oauth_authorize_allow():
    """The consent form's "Allow": 302 to ``redirect_uri?code=…&state=…`` (the code lives
    ``code_ttl`` seconds, single use). Unknown client, redirect URI or company → 400 HTML."""
    params, err = _authorize_params(request.form)
    if err is not None:
        return err
    company_uuid = request.form.get("company_uuid") or COMPANY_UUID
    if company_uuid not in world().companies:
        return Response("<h1>Unknown company</h1>", 400, mimetype="text/html")
    return _grant_code(params, company_uuid)


@blueprint.post("/oauth/token")
def oauth_token():
    """Spec ``/oauth/token`` with ``grant_type`` ``authorization_code``, ``refresh_token`` or
    ``system_access`` → 200 token body (see :meth:`GustoWorld.issue_tokens`; a system token
    carries ``"refresh_token": null`` as in the spec's Authentication x-examples).
    ``client_secret`` in the URL → 400 (https://docs.gusto.com/embedded-payroll/docs/company-access-tokens);
    wrong client credentials → 401 ``invalid_client``; a bad, used or expired code, a code
    issued to another redirect_uri, or a used refresh token → 400 ``invalid_grant``. An
    authorization-code exchange fires ``company.provisioned`` ("always fired on OAuth
    connect", https://docs.gusto.com/embedded-payroll/docs/webhooks)."""
    cfg, w = config(), world()
    if "client_secret" in request.args:
        return oauth_error(400, "invalid_request", "client_secret must not be sent in the URL.")
    body = request_json()
    if body.get("client_id") != cfg["client_id"] or body.get("client_secret") != cfg["client_secret"]:
        return oauth_error(401, "invalid_client", "Client authentication failed.")
    grant_type = body.get("grant_type")
    event, subs = None, []
    with w.lock:
        now = w.now()
        if grant_type == "authorization_code":
            rec = w.codes.get(body.get("code") or "")
            if rec is None or rec["used"] or now >= rec["expires_at"] \
                    or rec["redirect_uri"] != body.get("redirect_uri"):
                return oauth_error(400, "invalid_grant", "The authorization code is invalid, "
                                   "expired, already used or was issued to another redirect_uri.")
            rec["used"] = True
            gid = w.new_grant("company", rec["company_uuid"])
            tokens = w.issue_tokens(gid, with_refresh=True)
            event = w.record_event("company.provisioned", "Company", rec["company_uuid"],
                                   rec["company_uuid"])
            subs = w.subscribers("Company")
        elif grant_type == "refresh_token":
            rec = w.refresh_tokens.get(body.get("refresh_token") or "")
            if rec is None or rec["used"]:
                # ASSUMPTION (stricter than the doc): a refresh token is revoked the moment it
                # is exchanged, not on first use of the new access token — makes races visible.
                return oauth_error(400, "invalid_grant", "The refresh token is invalid, "
                                   "revoked or was already used.")
            rec["used"] = True
            tokens = w.issue_tokens(rec["grant_id"], with_refresh=True, previous=rec["access"])
        elif grant_type == "system_access":
            # ASSUMPTION: every system token of the application shares one grant (one budget).
            gid = next((k for k, v in w.grants.items() if v["kind"] == "system"), None) \
                or w.new_grant("system", None)
            tokens = w.issue_tokens(gid, with_refresh=False)
        else:
            return oauth_error(400, "unsupported_grant_type",
                               f"grant_type {grant_type!r} is not supported.")
    if event is not None:
        deliverer().fan_out(event, subs)
    return gusto_json(tokens, 200)


@blueprint.post("/oauth/revoke")
def oauth_revoke():
    """Spec ``/oauth/revoke``: ``{client_id, client_secret, token}`` → 200 ``{}``; the token
    can no longer be used nor refreshed. Wrong client credentials → 401 ``invalid_client``.
    ASSUMPTION: an unknown token also answers 200 (RFC 7009)."""
    cfg, w = config(), world()
    body = request_json()
    if body.get("client_id") != cfg["client_id"] or body.get("client_secret") != cfg["client_secret"]:
        return oauth_error(401, "invalid_client", "Client authentication failed.")
    with w.lock:
        rec = w.access_tokens.get(body.get("token") or "")
        if rec is not None:
            rec["revoked"] = True
            if rec["refresh_token"] in w.refresh_tokens:
                w.refresh_tokens[rec["refresh_token"]]["used"] = True
    return gusto_json({}, 200)


@blueprint.get("/v1/token_info")
@requires("any")
def token_info():
    """Spec ``get-v1-token-info`` (schema ``Token-Info``): ``{scope, resource: {type, uuid},
    resource_owner}`` — a company token names its company and a ``CompanyAdmin`` owner, a
    system token the ``Oauth::Application`` and no owner. Bad token → 401."""
    rec, grant = g.token, g.grant
    if grant["kind"] == "system":
        return gusto_json({"scope": rec["scope"], "resource": {"type": "Oauth::Application",
                                                                "uuid": APPLICATION_UUID},
                           "resource_owner": None})
    return gusto_json({"scope": rec["scope"],
                       "resource": {"type": "Company", "uuid": grant["company_uuid"]},
                       "resource_owner": {"type": "CompanyAdmin", "uuid": ADMIN_UUID}})
