"""TallyPrime XML-gateway emulator (sandbox; never a production component): :func:`create_app`.

One XML endpoint, ``POST /`` (any path is accepted, as on port 9000), state in memory, no
authentication of the port itself (the local XML port has none:
https://help.tallysolutions.com/pre-requisites-for-integrations); password-protected companies
are a sandbox rule described in :mod:`sandbox.tallyprime.emulator`.
The subset of Tally behaviour ml-connector relies on lives in modules by concern:

* :mod:`~sandbox.tallyprime.company` — a company's books (masters, vouchers, GUID/MASTERID/
  ALTERID counters) and which companies are loaded;
* :mod:`~sandbox.tallyprime.emulator` — :class:`TallyEmulator`: state, faults, statistics, the
  per-request lock, decoding and dispatch;
* :mod:`~sandbox.tallyprime.imports` — ``Import/Data`` and legacy ``Import Data`` (groups, cost
  categories, cost centres, ledgers, vouchers; LINEERRORs and counters);
* :mod:`~sandbox.tallyprime.exports` — inline-TDL collections, objects, the Day Book;
* :mod:`~sandbox.tallyprime.xmlio` — reading requests and rendering replies;
* :mod:`~sandbox.tallyprime.tdl` / :mod:`~sandbox.tallyprime.objects` — the inline-TDL subset
  real clients send (formulas, collections, aggregates, reports) over the books as TDL objects;
* :mod:`~sandbox.tallyprime.inventory` — units, godowns, stock groups, stock items, purchase
  and debit-note invoice vouchers entered as a person would;
* :mod:`~sandbox.tallyprime.seed` — bulk vouchers (journals, purchases) for tests and benchmarks.

Error catalogue (fixed wording; Tally's own punctuation varies by release): ``Ledger 'X' does
not exist!``, ``Group 'X' does not exist!``, ``Cost Category 'X' does not exist!``, ``Cost
Centre 'X' does not exist!``, ``Voucher Type 'X' does not exist!``, ``Voucher totals do not
match!``, ``Date is not within the financial period``, ``Company 'X' is not loaded!`` (``No
company is loaded!`` when SVCURRENTCOMPANY is absent and no company is open), ``Unknown
Request, cannot be processed``; for cost centres (wording ours, ASSUMPTION) ``Cost Centre 'X'
already exists!`` and ``Cost Centre 'X' does not exist!``; inventory (entered through the
admin routes) ``Stock Item 'X' does not exist!``, ``Unit 'X' does not exist!``, ``Godown 'X'
does not exist!``, ``Voucher Type 'X' does not exist!``, ``No stock items in voucher!``,
``Could not find Voucher 'X'``; inline-TDL reports ``Could not find Report 'X'`` and
``Could not find Collection 'X'``; protected companies (ASSUMPTION, wording ours) ``Company 'X'
needs a User Name and Password`` and ``Invalid User Name or Password for Company 'X'``; every
TDL construct outside the supported subset ``Sandbox: …`` (never guessed). Emulator-only texts (ASSUMPTION):
``ISDEEMEDPOSITIVE does not match the sign of AMOUNT for Ledger 'X'``, ``Cost Centre
allocation totals do not match for Ledger 'X'``, ``Cost Centres are not applicable for Ledger
'X'``, ``Sandbox: unsupported filter formula …``.
"""
from __future__ import annotations

import socket

from flask import Flask, Response, jsonify, request

from .company import Company, ImportFailure
from .emulator import TallyEmulator
from .inventory import (alter_invoice_voucher, cancel_voucher, create_invoice_voucher,
                        delete_master, delete_voucher, upsert_master, voucher_summary)

__all__ = ["create_app", "TallyEmulator"]


def create_app(config: dict | None = None) -> Flask:
    """The emulator as a Flask app; ``app.extensions["tally_emulator"]`` is its
    :class:`TallyEmulator`.

    ``config``: ``{"companies": [{"name", "books_from": "YYYYMMDD", "username", "password"}],
    "loaded": [names], "layout": "tally" (every reply laid out as Tally does),
    "enforce_login": false (protected companies answer without credentials, as Tally's FAQ
    says)}`` (defaults: one company "Demo Trading Co" from 20200401, all loaded).

    Routes: ``POST /`` and ``POST /<any path>`` — the Tally XML gateway. Sandbox-only (NOT
    Tally): ``GET /_sandbox/state`` (:meth:`TallyEmulator.state`), ``POST /_sandbox/reset``
    (``{"ok": true}``), ``POST /_sandbox/companies`` and ``POST /_sandbox/seed`` (see their
    docstrings), ``POST /_sandbox/faults`` with JSON ``{"down": bool, "hang_seconds": float,
    "count": N, "unload_company": name, "load_company": name, "reply_bomb": bool,
    "alter_reports_created": N, "ctrl_refs": "ref"|"raw"|null, "hang_after_import": seconds}``
    → the current faults. ``down`` closes each XML connection without an answer (the client
    sees a broken connection, as close to "connection refused" as a running server can get —
    ASSUMPTION); ``hang_seconds`` sleeps, holding the request lock, before answering the next
    ``count`` (default 1) XML requests; ``reply_bomb`` makes the next XML reply a
    billion-laughs document; ``ctrl_refs`` puts ``&#4;`` / ``\\x04`` before exported
    narrations and ledger names until cleared; ``alter_reports_created`` answers the next N
    cost-centre Alters with CREATED; ``hang_after_import`` lets the next voucher import that
    creates something complete, then delays only its reply (a crash "after Tally accepted").
    Each cost centre in the state carries its payroll fields, ``alter_count`` and ``history``
    (see :func:`sandbox.tallyprime.imports.import_centre`).

    Entering data as a person would in Tally (sandbox-only; ``company`` defaults to the first
    company; refusals → 400 ``{"error": <Tally-style text>}``, unknown company → 404):

    * ``POST /_sandbox/companies`` ``{"name", "books_from", "create": true, "username",
      "password", "loaded": true}`` creates a company (with a user name and password: a
      protected one, see :mod:`sandbox.tallyprime.emulator`) or changes an existing one's
      books beginning / credentials;
    * ``POST /_sandbox/masters`` ``{"kind": unit|godown|stockgroup|stockitem|ledger|group|
      vouchertype, "name", "action": "save"|"delete", …fields}`` (stock item: ``part_no``,
      ``base_units``, ``parent``; unit: ``formal_name``, ``decimals``; voucher type:
      ``parent``; ``rename``) → the master (a save of an existing name alters it: new ALTERID);
    * ``POST /_sandbox/vouchers`` (a Purchase or Debit Note in invoice mode, see
      :func:`sandbox.tallyprime.inventory.create_invoice_voucher`), ``PATCH
      /_sandbox/vouchers/<guid>`` (alter), ``POST /_sandbox/vouchers/<guid>/cancel``, ``DELETE
      /_sandbox/vouchers/<guid>`` → the voucher's summary (GUID, MASTERID, ALTERID, number,
      items with quantities, rates and amounts as strings).
    """
    app = Flask("sandbox.tallyprime")
    emulator = TallyEmulator(config)
    app.extensions["tally_emulator"] = emulator

    @app.get("/_sandbox/state")
    def state():
        """Sandbox: :meth:`TallyEmulator.state` as JSON."""
        return jsonify(emulator.state())

    @app.post("/_sandbox/reset")
    def reset():
        """Sandbox: back to the configured initial state → ``{"ok": true}``."""
        emulator.reset()
        return jsonify({"ok": True})

    @app.post("/_sandbox/faults")
    def faults():
        """Sandbox: apply a fault spec (above) → the current faults."""
        return jsonify(emulator.set_faults(request.get_json(force=True) or {}))

    @app.post("/_sandbox/companies")
    def companies():
        """Sandbox: ``{"name", "books_from": "YYYYMMDD"}`` changes a company's books beginning
        (as an accountant opening an earlier financial year would) → ``{"name", "books_from"}``;
        404 ``{"error"}`` for an unknown one unless ``"create": true`` (then it is created,
        loaded unless ``"loaded": false``). ``username``/``password`` put a company under
        security control (``username: null`` lifts it); the reply says ``protected``."""
        body = request.get_json(force=True) or {}
        with emulator.data_lock:
            key = str(body.get("name", "")).casefold()
            company = emulator.companies.get(key)
            if company is None:
                if not body.get("create") or not key:
                    return jsonify({"error": "no such company"}), 404
                company = emulator.companies[key] = Company(
                    str(body["name"]), str(body.get("books_from") or "20200401"))
                if body.get("loaded", True):
                    emulator.loaded.add(key)
            if body.get("books_from"):
                company.books_from = str(body["books_from"])
            if "username" in body:
                company.username = body["username"] or None
                company.password = str(body.get("password") or "") if company.username else None
            out = {"name": company.name, "books_from": company.books_from}
            if company.requires_login() or "username" in body:
                out["protected"] = company.requires_login()
            return jsonify(out)

    def _company(body: dict):
        name = str(body.get("company") or "")
        if not name:
            return next(iter(emulator.companies.values()))
        return emulator.companies.get(name.casefold())

    def _admin(work):
        body = request.get_json(force=True, silent=True) or {}
        with emulator.data_lock:
            company = _company(body)
            if company is None:
                return jsonify({"error": "no such company"}), 404
            try:
                return jsonify(work(company, body))
            except ImportFailure as exc:
                return jsonify({"error": str(exc)}), 400

    def _public(obj: dict) -> dict:
        return {k: (str(v) if not isinstance(v, (str, int, bool, type(None), list, dict)) else v)
                for k, v in obj.items()}

    @app.post("/_sandbox/masters")
    def masters():
        """Sandbox: save or delete a master (see above) → ``{"outcome", "master"}``."""
        def work(company, body):
            kind = str(body.get("kind") or "")
            if str(body.get("action") or "save").lower() == "delete":
                return {"outcome": "deleted", "master": _public(delete_master(company, kind, body.get("name", "")))}
            outcome, obj = upsert_master(company, kind, body)
            return {"outcome": outcome, "master": _public(obj)}
        return _admin(work)

    @app.post("/_sandbox/vouchers")
    def vouchers_create():
        """Sandbox: save a Purchase / Debit Note (invoice mode) → its summary."""
        return _admin(lambda company, body: voucher_summary(create_invoice_voucher(company, body)))

    @app.patch("/_sandbox/vouchers/<guid>")
    def vouchers_alter(guid: str):
        """Sandbox: alter a saved invoice voucher → its summary (new ALTERID)."""
        return _admin(lambda company, body: voucher_summary(alter_invoice_voucher(company, guid, body)))

    @app.post("/_sandbox/vouchers/<guid>/cancel")
    def vouchers_cancel(guid: str):
        """Sandbox: cancel a voucher → its summary (``is_cancelled``, new ALTERID)."""
        return _admin(lambda company, body: voucher_summary(cancel_voucher(company, guid)))

    @app.delete("/_sandbox/vouchers/<guid>")
    def vouchers_delete(guid: str):
        """Sandbox: delete a voucher → the deleted voucher's summary."""
        return _admin(lambda company, body: voucher_summary(delete_voucher(company, guid)))

    @app.post("/_sandbox/seed")
    def seed():
        """Sandbox: bulk vouchers (:func:`sandbox.tallyprime.seed.seed_from_spec`) → its summary."""
        from .seed import seed_from_spec
        return jsonify(seed_from_spec(emulator, request.get_json(force=True) or {}))

    @app.post("/")
    @app.post("/<path:_any>")
    def gateway(_any: str = ""):
        """The XML gateway: HTTP 200 with the reply in the request's encoding; with the
        ``down`` fault the connection is shut without an answer."""
        if emulator.faults["down"]:
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return Response("Tally is down (sandbox fault)", status=503)
        body, ctype = emulator.handle(request.get_data(), request.headers.get("Content-Type"))
        return Response(body, status=200, content_type=ctype)

    return app
