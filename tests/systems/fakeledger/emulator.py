"""The fake ledger's server: journals keyed by the client's key, ledgers by name, and a count of
the requests it answered (``GET /_state``). A journal whose debits and credits differ is refused
with 422, as a real ledger would."""
from __future__ import annotations

import itertools
import threading
from decimal import Decimal

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """The emulator's Flask app (state in the app's closure)."""
    app = Flask(__name__)
    lock = threading.Lock()
    state = {"requests": 0, "journals": [], "ledgers": {}}
    ids = itertools.count(1)

    @app.before_request
    def _count():
        if not request.path.startswith("/_state"):
            with lock:
                state["requests"] += 1

    @app.get("/journals")
    def journals():
        key = request.args.get("key")
        with lock:
            return jsonify([j for j in state["journals"] if key is None or j["key"] == key])

    @app.post("/journals")
    def post_journal():
        body = request.get_json(force=True)
        dr = sum(Decimal(line["debit"]) for line in body["lines"])
        cr = sum(Decimal(line["credit"]) for line in body["lines"])
        if dr != cr:
            return jsonify(error=f"unbalanced: Dr {dr} Cr {cr}"), 422
        with lock:
            missing = [line["ledger"] for line in body["lines"] if line["ledger"] not in state["ledgers"]]
            if missing:
                return jsonify(error=f"unknown ledgers {missing}"), 422
            journal = {"id": f"J{next(ids)}", **body}
            state["journals"].append(journal)
        return jsonify(id=journal["id"]), 201

    @app.get("/ledgers")
    def ledgers():
        with lock:
            return jsonify(sorted(state["ledgers"]))

    @app.post("/ledgers")
    def add_ledger():
        body = request.get_json(force=True)
        with lock:
            created = body["name"] not in state["ledgers"]
            state["ledgers"].setdefault(body["name"], body.get("group"))
        return jsonify(created=created), 201 if created else 200

    @app.get("/_state")
    def _state():
        with lock:
            return jsonify(requests=state["requests"], journals=state["journals"])

    return app
