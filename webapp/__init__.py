"""The web process: webhooks in, OAuth connect, operator API, health.

``create_app()`` is the factory gunicorn runs (``gunicorn 'webapp:create_app()'``).
"""
from __future__ import annotations

from flask import Flask, jsonify
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import IntegerConverter

from config.logging import configure_logging
from connector_tasks import runtime
from connector_tasks.jobs.retention import retention_days
from connector_tasks.store.db import upgrade


def create_app(settings=None) -> Flask:
    """Build the Flask app for ``settings`` (default: from the environment).

    Outside production the store's schema is upgraded at start (SQLite default). Raises
    :class:`~connector_tasks.core.errors.ConfigurationError` naming the variable for bad settings
    (a malformed ``FERNET_KEYS`` among them), so gunicorn refuses to boot rather than serve 500s.
    """
    from config.settings import set_settings

    if settings is not None:
        set_settings(settings)
    s = runtime.settings()  # a malformed FERNET_KEYS (or any bad variable) stops the start here
    configure_logging(s.log_level)
    runtime.vault()  # the keys build a vault (checked again by /healthz with a round trip)
    retention_days(s)  # EVENT_RETENTION_DAYS is not below the vendor's replay window
    if not s.is_production:
        upgrade(s.database_url)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=s.secret_key, MAX_CONTENT_LENGTH=s.max_webhook_bytes,
                      # the operator's OAuth session (webapp/oauth.py): sent on the provider's
                      # top-level redirect back (Lax), never to scripts, only over HTTPS when
                      # the service is served over HTTPS
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SECURE=s.public_base_url.startswith("https://"))
    app.session_interface = _NoWebhookSessions()
    # ids in URLs: an integer past 64 bits is "not found" (404), not an overflow in the store (500)
    app.url_map.converters["int"] = BoundedIntConverter

    from webapp.agents import bp as agents_bp
    from webapp.api import bp as api_bp
    from webapp.health import bp as health_bp
    from webapp.oauth import bp as oauth_bp
    from webapp.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(agents_bp)

    @app.errorhandler(413)
    def too_large(_exc):
        return jsonify(error=f"request body over {s.max_webhook_bytes} bytes"), 413

    @app.errorhandler(500)
    def internal(exc):
        app.logger.error("unhandled error: %s", getattr(exc, "original_exception", exc),
                         exc_info=getattr(exc, "original_exception", None))
        return jsonify(error="internal error; see the web log"), 500

    @app.errorhandler(404)
    def not_found(_exc):
        return jsonify(error="not found"), 404

    return app


class BoundedIntConverter(IntegerConverter):
    """Flask's ``<int:…>`` limited to at most 64 digits: a longer id does not match the route
    (404) and is never parsed; a shorter one reaches its view, which refuses an id no row can
    have with a 400 naming the range (``webapp/api.py``), instead of the store raising
    ``OverflowError`` (a 500 before)."""

    regex = r"\d{1,64}"


class _NoWebhookSessions(SecureCookieSessionInterface):
    """The cookie session, except on webhook deliveries (machines send no cookies): there Flask
    gets a null session and skips deriving the signing key on every request."""

    def open_session(self, app, request):
        if request.path.startswith("/webhooks/"):
            return None
        return super().open_session(app, request)
