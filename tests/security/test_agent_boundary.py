"""The agent's trust boundary, attacked as issue 12 describes, with real parts: a real
redis-server with ACLs, two Tally connections each served by its own real agent process
(enrolled, registered through the web app with a one-time code), real cloud workers with the
outbox collector, gunicorn, the Gusto and TallyPrime emulators.

Agent B holds only its own credential (as an attacker on B's LAN would) and tries to read,
steal and inject into A's lane, forge A's outcomes, make a cloud worker run something, and run
broker admin commands. Each attempt fails, and A's job ends exactly once, by A's own agent.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis as redis_lib
import requests
from kombu import Connection as KombuConnection
from sqlalchemy import select

from config.settings import child_environment
from connector_tasks.agents import acl, capability
from connector_tasks.agents.outbox import DEFAULT_MAX_BYTES
from connector_tasks.agents.models import Agent
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncJob
from sandbox.demo import enrol_agent
from tests.harness import DEMO_PAYROLL, TALLY_CONN, TallyKit, start_deployment, wait_until

pytestmark = pytest.mark.integration

B_CONN = "tenant-b-tally"


class Env:
    """The deployment, agent A (the harness's) and agent B (started here)."""


@pytest.fixture(scope="module")
def env(tmp_path_factory, redis_server):
    folder = tmp_path_factory.mktemp("agent-boundary")
    dep = start_deployment(folder, redis_server.url, f"sqlite:///{folder / 'store.db'}",
                           overrides={"retry_base": 0.5})
    tally_b = TallyKit(connection=B_CONN)
    tally_b.start()
    try:
        with session_scope(dep.settings.database_url) as s:
            tally_b.add_connection(s)
        argv_b, env_b = enrol_agent(dep.settings, tally_b, dep.web_url, folder / "agent-b")
        env_b["TALLY_URL"] = tally_b.url
        dep.services.start_agent("agent-b", argv_b, env_b)
        e = Env()
        e.dep, e.tally_b, e.folder = dep, tally_b, folder
        e.cred_a = json.loads((folder / "agent" / f"agent-{TALLY_CONN}.json").read_text())
        e.cred_b = json.loads((folder / "agent-b" / f"agent-{B_CONN}.json").read_text())
        e.a, e.b = e.cred_a["agent_id"], e.cred_b["agent_id"]
        e.as_b = redis_lib.Redis.from_url(e.cred_b["broker_url"], socket_timeout=10)
        e.cloud = redis_lib.Redis.from_url(redis_server.url)
        yield e
    finally:
        dep.stop()
        tally_b.stop()


def refused(fn, *args) -> str:
    """Run a Redis call as agent B; return the NOPERM error text (fail if it was allowed)."""
    with pytest.raises(redis_lib.ResponseError) as info:
        fn(*args)
    assert "NOPERM" in str(info.value) or "no permissions" in str(info.value), info.value
    return str(info.value)


def refused_count(e, agent_id: int) -> int:
    with session_scope(e.dep.settings.database_url) as s:
        return s.get(Agent, agent_id).refused_reports



def test_each_agent_has_its_own_user_prefix_and_no_cloud_secret(env):
    assert env.a != env.b
    for cred, conn in ((env.cred_a, TALLY_CONN), (env.cred_b, B_CONN)):
        assert cred["broker_url"].startswith(f"redis://agent-{cred['agent_id']}:")
        assert cred["key_prefix"] == f"agent:{cred['agent_id']}:" and cred["connections"] == [conn]
    for path in (env.folder / "agent" / f"agent-{TALLY_CONN}.json", env.folder / "agent-b" / f"agent-{B_CONN}.json"):
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    # the agents' processes hold none of the cloud's secrets
    for name in ("tally-worker", "agent-b"):
        proc = next(p for n, p in env.dep.services.procs if n == name)
        environ = dict(item.split("=", 1) for item in
                       open(f"/proc/{proc.pid}/environ", "rb").read().decode().split("\0") if "=" in item)
        for secret in ("DATABASE_URL", "FERNET_KEYS", "SECRET_KEY", "REDIS_URL", "API_TOKEN", "GUSTO_CLIENT_SECRET",
                       "GUSTO_CLIENT_ID"):
            assert secret not in environ, f"{name} was given {secret}"
    # and both lanes work: a masters snapshot through B's own agent and outbox
    from connector_tasks.connectors.tallyprime.reference import request_masters_snapshot

    snap = request_masters_snapshot(B_CONN, wait=60)
    assert snap["company"] == "Demo Trading Co" and "Cash" in snap["ledgers"]


def test_agent_b_cannot_read_steal_or_inject_into_a_lane(env):
    # A's agent is stopped; a payroll gives A's lane a command (employee names and pay in it)
    env.dep.services.kill("tally-worker")
    env.dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process")
    lane_a = f"agent:{env.a}:tally.{TALLY_CONN}"
    wait_until(lambda: env.cloud.llen(lane_a), timeout=60, what="A's command in A's lane")
    before = env.cloud.lrange(lane_a, 0, -1)
    b = env.as_b
    for key in (lane_a, f"tally.{TALLY_CONN}", f"agent:{env.a}:outbox", f"agent:{env.a}:unacked"):
        refused(b.llen, key)
        refused(b.lrange, key, 0, -1)
        refused(b.rpop, key)
        refused(b.brpop, [key], 1)
        refused(b.lpush, key, json.dumps({"forged": True}))
        refused(b.hgetall, key)
    refused(b.get, f"agent:{env.a}:lock:tally:{env.dep.tally_url}")
    # a Celery producer with A's prefix on B's credential cannot inject tally.post_journal
    with KombuConnection(env.cred_b["broker_url"], transport_options={"global_keyprefix": f"agent:{env.a}:"}) as conn:
        with pytest.raises(Exception) as info:
            producer = conn.Producer()
            producer.publish({"forged": True}, routing_key=f"tally.{TALLY_CONN}", exchange="",
                             retry=False)
        assert "NOPERM" in str(info.value) or "permission" in str(info.value).lower()
    assert env.cloud.lrange(lane_a, 0, -1) == before  # A's command is untouched, nothing added


def test_agent_b_cannot_forge_a_outcomes_and_a_posts_once(env):
    with session_scope(env.dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == DEMO_PAYROLL))
        job_id, status = job.id, job.status
    assert status == "posting"
    forged_ok = {"result": "ok", "target_type": "voucher", "target_id": "999999", "revision": 1}
    reports = [
        {"capability": "0" * 64},  # a guessed capability
        {"capability": capability.issue(env.b, capability.job_subject(job_id + 1000), "tally.post_journal")},
        # even A's real capability (as if stolen) is refused from B's outbox: the agent id is
        # the outbox's, never the report's
        {"capability": capability.issue(env.a, capability.job_subject(job_id), "tally.post_journal")},
    ]
    start = refused_count(env, env.b)
    for extra in reports:
        env.as_b.lpush(acl.outbox_key(env.b), json.dumps(
            {"v": 1, "kind": "outcome", "command": "tally.post_journal", "job_id": job_id, "outcome": forged_ok,
             **extra}))
    # reports asking the cloud to run something else are refused too
    env.as_b.lpush(acl.outbox_key(env.b), json.dumps({"v": 1, "kind": "outcome", "command": "gusto.sync_reference_data",
                                                      "job_id": job_id, "capability": "x", "outcome": forged_ok}))
    env.as_b.lpush(acl.outbox_key(env.b), "x" * (DEFAULT_MAX_BYTES + 10))  # oversized
    env.as_b.lpush(acl.outbox_key(env.b), "[" * 5000)  # not a report
    wait_until(lambda: refused_count(env, env.b) >= start + 6, timeout=60, what="six refused reports")
    with session_scope(env.dep.settings.database_url) as s:
        job = s.get(SyncJob, job_id)
        assert job.status == "posting" and job.target_ref is None
    assert env.dep.vouchers() == []
    # A's own agent comes back, posts the voucher once and its report is accepted
    env.dep.restart_agent()
    done = env.dep.wait_for_job(DEMO_PAYROLL)
    assert done["status"] == "done" and done["target_ref"] != "999999"
    assert len(env.dep.vouchers()) == 1
    assert refused_count(env, env.a) == 0


def test_agent_b_cannot_make_a_cloud_worker_run_anything(env):
    b = env.as_b
    for queue in ("default", "gusto", "acumatica", "ifs_cloud", "celery"):
        refused(b.lpush, queue, json.dumps({"task": "gusto.sync_reference_data"}))
        refused(b.sadd, f"_kombu.binding.{queue}", "x")
    refused(b.publish, "/0.celeryev/task.sent", "x")
    with pytest.raises(redis_lib.ResponseError):
        p = b.pubsub()
        p.subscribe("/0.celery.pidbox")
        p.get_message(timeout=2)
    # Celery itself, on B's credential without a prefix: the broker refuses the message
    from celery import Celery

    app = Celery("attacker", broker=env.cred_b["broker_url"])
    app.conf.broker_connection_retry = False
    with pytest.raises(Exception) as info:
        app.send_task("gusto.sync_reference_data", args=["acme"], queue="gusto", retry=False)
    assert "NOPERM" in str(info.value) or "permission" in str(info.value).lower()
    assert env.cloud.llen("gusto") == 0 and env.cloud.llen("default") == 0


def test_agent_b_cannot_run_admin_commands(env):
    b = env.as_b
    for args in (("CONFIG", "GET", "*"), ("CONFIG", "SET", "requirepass", "x"), ("FLUSHALL",), ("FLUSHDB",),
                 ("KEYS", "*"), ("SCAN", "0"), ("ACL", "LIST"), ("ACL", "SETUSER", f"agent-{env.b}", "+@all"),
                 ("ACL", "WHOAMI"), ("CLIENT", "LIST"), ("CLIENT", "KILL", "USER", "default"), ("DEBUG", "SLEEP", "0"),
                 ("MONITOR",), ("SCRIPT", "FLUSH"), ("INFO",), ("SLAVEOF", "127.0.0.1", "1"), ("BGSAVE",),
                 ("MIGRATE", "127.0.0.1", "1", "", "0", "1", "KEYS", f"agent:{env.a}:outbox")):
        refused(b.execute_command, *args)
    # a script cannot reach another agent's keys either
    refused(b.eval, "return redis.call('LLEN', KEYS[1])", 1, f"agent:{env.a}:tally.{TALLY_CONN}")
    assert env.cloud.ping()


def test_a_protected_company_login_travels_only_inside_the_command(env):
    from connector_tasks.agents.lanes import masked
    from connector_tasks.connectors.tallyprime.reference import request_masters_snapshot
    from connector_tasks.core.errors import TransientApiError

    password = "s3cret-Tally-pass"
    r = requests.post(f"{env.tally_b.url}/_sandbox/companies",
                      json={"name": "Demo Trading Co", "username": "accounts", "password": password}, timeout=30)
    assert r.json()["protected"] is True
    with pytest.raises(TransientApiError, match="AuthError"):
        request_masters_snapshot(B_CONN, wait=60)
    cli = subprocess.run([sys.executable, "-m", "connector_tasks.cli", "tallyprime", "login", B_CONN,
                          "--username", "accounts", "--password", password],
                         env=child_environment(env.dep.settings), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert request_masters_snapshot(B_CONN, wait=60)["company"] == "Demo Trading Co"
    # the password reached the agent only inside the command: not in its credential, its
    # environment, nor any log of the deployment; Celery's reprs of a command mask it
    logs = env.dep.services.logs
    for path in [*logs.glob("*.log"), env.folder / "agent-b" / f"agent-{B_CONN}.json"]:
        assert password not in path.read_text(errors="replace"), path
    assert masked([1, {"entry": {}, "secrets": {"tally_login": {"password": password}}, "capability": "c"}]) == \
        [1, {"entry": {}, "secrets": "***", "capability": "***"}]
    requests.post(f"{env.tally_b.url}/_sandbox/companies", json={"name": "Demo Trading Co", "username": None},
                  timeout=30)


def test_register_code_is_single_use_and_expires(env):
    from connector_tasks.agents.enrol import enroll

    from connector_tasks.agents.enrol import revoke

    cli = subprocess.run([sys.executable, "-m", "connector_tasks.cli", "agents", "enroll", "--connection", B_CONN],
                         env=child_environment(env.dep.settings), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    new_id, code = int(cli.stdout.split()[1]), cli.stdout.strip().splitlines()[-1]
    with session_scope(env.dep.settings.database_url) as s:
        _id2, expired = enroll(s, [B_CONN], ttl=-1)
        assert s.get(Agent, new_id).code_sha256 != code and len(code) == 48  # stored hashed only
    unknown = subprocess.run([sys.executable, "-m", "connector_tasks.cli", "agents", "enroll", "--connection", "nope"],
                             env=child_environment(env.dep.settings), capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "unknown connection 'nope'" in unknown.stderr
    url = f"{env.dep.web_url}/agents/register"
    ok = requests.post(url, json={"code": code}, timeout=30)
    assert ok.status_code == 200 and ok.json()["agent_id"] == new_id
    with session_scope(env.dep.settings.database_url) as s:
        revoke(s, new_id)  # B's connection stays with agent B (the newest active agent gets the commands)
    again = requests.post(url, json={"code": code}, timeout=30)
    assert again.status_code == 403 and "used or expired" in again.json()["error"]
    assert requests.post(url, json={"code": expired}, timeout=30).status_code == 403
    assert requests.post(url, json={"code": "guess"}, timeout=30).status_code == 403
    assert requests.post(url, data="not json", timeout=30).status_code == 400
    # the register command refuses a used code with the cloud's reason
    proc = subprocess.run([sys.executable, "-m", "tally_worker.cli", "register", code, "--url", env.dep.web_url,
                           "--config", str(env.folder / "never.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "403" in proc.stderr and not (env.folder / "never.json").exists()


def test_after_a_broker_restart_the_agents_users_come_back(env, redis_server):
    """ACL users live in the server's memory: the collector recreates them from ``agents:acl``
    (persisted with the data), with the same password hashes, and both agents work again."""
    env.dep.services.kill("tally-worker")
    redis_server.stop()
    redis_server.start()
    env.dep.restart_agent()
    for agent in (env.a, env.b):
        wait_until(lambda: env.cloud.execute_command("ACL", "GETUSER", f"agent-{agent}"), timeout=30,
                   what=f"agent-{agent} recreated")
    user = env.cloud.acl_getuser(f"agent-{env.b}")
    assert f"agent:{env.b}:*" in str(user["keys"]) and not user["channels"], user
    granted = {c.lstrip("+") for c in user["commands"] if c.startswith("+")}
    assert granted and granted <= set(acl.AGENT_COMMANDS), granted - set(acl.AGENT_COMMANDS)
    from connector_tasks.connectors.tallyprime.reference import request_masters_snapshot

    assert request_masters_snapshot(TALLY_CONN, wait=60)["company"] == "Demo Trading Co"
    assert request_masters_snapshot(B_CONN, wait=60)["company"] == "Demo Trading Co"


def test_revoked_agent_is_cut_off(env):
    b = env.as_b
    assert b.ping()
    pending = json.dumps({"v": 1, "kind": "outcome", "command": "tally.post_journal", "job_id": 1,
                          "capability": "0" * 64, "outcome": {}})
    cli = subprocess.run([sys.executable, "-m", "connector_tasks.cli", "agents", "revoke", str(env.b)],
                         env=child_environment(env.dep.settings), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "revoked" in cli.stdout and "connection(s) closed" in cli.stdout
    killed = int(cli.stdout.split(";")[1].split()[0])
    assert killed >= 2  # our client here and the agent's own connections
    with pytest.raises(redis_lib.ConnectionError):
        b.lpush(acl.outbox_key(env.b), pending)  # the open connection was killed ...
    with pytest.raises((redis_lib.AuthenticationError, redis_lib.ResponseError)):
        redis_lib.Redis.from_url(env.cred_b["broker_url"]).ping()  # ... and no new one is let in
    assert env.cloud.execute_command("ACL", "GETUSER", f"agent-{env.b}") is None
    assert str(env.b) not in {k.decode() for k in env.cloud.hkeys(acl.REGISTRY_KEY)}
    # agent A goes on working
    from connector_tasks.connectors.tallyprime.reference import request_masters_snapshot

    assert request_masters_snapshot(TALLY_CONN, wait=60)["company"] == "Demo Trading Co"
