"""Webhook delivery of the Gusto emulator: signing, retries, and emitting events.

Gusto POSTs each event (and a subscription's verification token) to the subscriber URL with an
``X-Gusto-Signature`` header and retries a non-2xx answer up to 16 times with exponential
backoff (https://docs.gusto.com/embedded-payroll/docs/webhooks, "Webhook signature";
https://docs.gusto.com/app-integrations/docs/webhooks, retries). Deliveries run in daemon
threads; each attempt is logged in ``GustoWorld.deliveries`` (``GET /_sandbox/deliveries``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import requests

from .world import GustoWorld


def sign(body: bytes, verification_token: str) -> str:
    """``X-Gusto-Signature`` of a webhook body: lowercase hex HMAC-SHA256 of the raw bytes keyed
    by the subscription's ``verification_token``, no prefix
    (https://docs.gusto.com/app-integrations/docs/webhooks; the hex encoding is corroborated by
    third-party receivers, not verified against the vendor's own snippet)."""
    return hmac.new(verification_token.encode(), body, hashlib.sha256).hexdigest()


class Deliverer:
    """Delivers webhook POSTs in background threads with Gusto's retry rule: a non-2xx answer
    or a connection error is retried, ``delivery_attempts`` attempts in all (Gusto: up to 16
    retries, https://docs.gusto.com/app-integrations/docs/webhooks), waiting
    ``delivery_backoff * 2**n`` seconds after failed attempt *n* (ASSUMPTION: the base).
    A verification that never succeeds turns its pending subscription ``unreachable``.
    A world reset stops every pending delivery of the old world."""

    def __init__(self, world: GustoWorld):
        self.world = world

    def deliver(self, kind: str, event_uuid: str | None, subscription: dict, payload: dict,
                *, barrier: threading.Barrier | None = None) -> threading.Thread:
        """Start one delivery (with its retries) of ``payload`` to ``subscription`` and return
        the thread. ``kind`` is ``event`` or ``verification`` (for the delivery log); with
        ``barrier`` every delivery sharing it sends its first attempt at the same moment."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = sign(body, subscription["verification_token"])
        with self.world.lock:
            generation = self.world.generation
        thread = threading.Thread(target=self._run, name=f"gusto-delivery-{event_uuid or kind}",
                                  args=(kind, event_uuid, subscription, body, signature,
                                        generation, barrier), daemon=True)
        thread.start()
        return thread

    def fan_out(self, event: dict, subscriptions: list[dict]) -> None:
        """Deliver ``event`` to each of ``subscriptions`` (copies taken under the world lock)."""
        for sub in subscriptions:
            self.deliver("event", event["uuid"], sub, event)

    def emit(self, event_type: str, entity_type: str, entity_uuid: str, company_uuid: str) -> dict:
        """Record an event (it shows in ``GET /v1/events``) and deliver it to the verified
        subscriptions of ``entity_type``; returns the event. When the sandbox fault
        ``/_sandbox/deliveries/drop`` is armed and someone subscribes, the webhook is dropped
        instead (logged with status ``dropped``)."""
        world = self.world
        with world.lock:
            event = world.record_event(event_type, entity_type, entity_uuid, company_uuid)
            subs = world.subscribers(entity_type)
            if subs and world.drop_deliveries > 0:  # sandbox fault: this webhook is lost
                world.drop_deliveries -= 1
                world.deliveries.append({"kind": "event", "event_uuid": event["uuid"], "status": "dropped",
                                         "attempt": 0, "time": world.now()})
                subs = []
        self.fan_out(event, subs)
        return event

    def _run(self, kind, event_uuid, subscription, body, signature, generation, barrier):
        cfg = self.world.config
        attempts = int(cfg["delivery_attempts"])
        if barrier is not None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        for attempt in range(1, attempts + 1):
            with self.world.lock:
                if self.world.generation != generation:
                    return
            status, error = None, None
            try:
                resp = requests.post(subscription["url"], data=body, timeout=cfg["delivery_timeout"],
                                     headers={"Content-Type": "application/json",
                                              "X-Gusto-Signature": signature,
                                              "User-Agent": "Gusto-Webhooks-Emulator"})
                status = resp.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            ok = status is not None and 200 <= status < 300
            with self.world.lock:
                if self.world.generation != generation:
                    return
                self.world.deliveries.append({
                    "kind": kind, "event_uuid": event_uuid,
                    "subscription_uuid": subscription["uuid"], "url": subscription["url"],
                    "attempt": attempt, "status": status, "error": error, "ok": ok,
                    "time": self.world.now(), "signature": signature})
            if ok:
                return
            if attempt < attempts:
                time.sleep(float(cfg["delivery_backoff"]) * (2 ** (attempt - 1)))
        if kind == "verification":
            with self.world.lock:
                sub = self.world.subscriptions.get(subscription["uuid"])
                if sub is not None and sub["status"] == "pending" and self.world.generation == generation:
                    # ASSUMPTION: a subscription whose URL never answered becomes "unreachable"
                    # (a status the spec's Webhook-Subscription enum lists).
                    sub["status"] = "unreachable"
