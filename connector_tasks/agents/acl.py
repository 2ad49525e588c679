"""A Redis ACL user per agent, confined to its own key prefix (Redis 6 ACLs,
https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/).

Agent ``N`` is Redis user ``agent-N``; every key it may touch starts with ``agent:N:`` (its
command lanes — kombu's ``global_keyprefix`` puts the queue lists, the binding sets and the
unacked hash/index/mutex under it —, its locks (e.g. one per instance of the books) and its outbox). It may run only the
commands in :data:`AGENT_COMMANDS` (what kombu's Redis transport needs to consume and
acknowledge, what redis-py's lock needs, ``LPUSH`` to its outbox); no pub/sub channel at all
(the agent runs without remote control, events, gossip, mingle or heartbeats, the only kombu
features that need fanout); nothing of ``@admin``/``@dangerous`` (CONFIG, FLUSHALL, KEYS, ACL,
CLIENT, DEBUG, …), no ``SCRIPT FLUSH``. Scripts (``EVALSHA``) are checked against the same key
patterns by Redis itself.

The cloud keeps each agent's rules (with the SHA-256 of its password, never the password) in the
Redis hash ``agents:acl`` (:data:`REGISTRY_KEY`), so :func:`reapply` recreates the users after a
Redis restart (ACL users live in memory unless an ACL file is used). Revocation deletes the user
and kills its connections (``CLIENT KILL USER``).
"""
from __future__ import annotations

import hashlib
import json
import logging

import redis as redis_lib

log = logging.getLogger(__name__)

#: the Redis hash agent id → {"user", "prefix", "password_sha256"} the cloud keeps.
REGISTRY_KEY = "agents:acl"

#: The commands an agent may run. kombu 5.x Redis transport (kombu/transport/redis.py): consume
#: BRPOP (+RPOP for a synchronous get), LLEN (queue size), publish/restore LPUSH/RPUSH, bindings
#: SADD/SMEMBERS/SREM (+ EVALSHA of its binding scripts), unacked bookkeeping HSET/HGET/HDEL/HLEN,
#: ZADD/ZREM/ZRANGE/ZREVRANGEBYSCORE, the restore mutex SET NX/GET/DEL/PEXPIRE/WATCH/MULTI/EXEC;
#: redis-py's Lock: SET NX PX, EVALSHA/EVAL, SCRIPT LOAD/EXISTS; connection set-up PING, SELECT,
#: CLIENT SETINFO/SETNAME (redis-py announces itself). Checked by
#: tests/security/test_agent_boundary.py with a real agent.
AGENT_COMMANDS = (
    "ping", "select", "echo", "client|setinfo", "client|setname", "client|getname", "client|id",
    "brpop", "rpop", "lpush", "rpush", "llen", "lrange",
    "sadd", "srem", "smembers", "scard",
    "hset", "hget", "hdel", "hlen", "hmget",
    "zadd", "zrem", "zrange", "zrangebyscore", "zrevrangebyscore", "zscore", "zcard",
    "get", "set", "del", "exists", "expire", "pexpire", "pttl", "ttl",
    "watch", "unwatch", "multi", "exec", "discard",
    "eval", "evalsha", "script|load", "script|exists",
)


def user_name(agent_id: int) -> str:
    """The Redis user of agent ``agent_id``: ``agent-<id>``."""
    return f"agent-{int(agent_id)}"


def key_prefix(agent_id: int) -> str:
    """Every key agent ``agent_id`` may touch starts with this: ``agent:<id>:``."""
    return f"agent:{int(agent_id)}:"


def outbox_key(agent_id: int) -> str:
    """The list agent ``agent_id`` pushes its reports to: ``agent:<id>:outbox``."""
    return f"{key_prefix(agent_id)}outbox"


def password_sha256(password: str) -> str:
    """The SHA-256 hex digest of ``password``: what Redis keeps (``#<hash>`` in ACL SETUSER)."""
    return hashlib.sha256(password.encode()).hexdigest()


def rules(agent_id: int, password_hash: str) -> list[str]:
    """The ACL SETUSER rules of agent ``agent_id`` whose password has SHA-256 ``password_hash``."""
    return ["reset", "on", f"#{password_hash}", f"~{key_prefix(agent_id)}*", "resetchannels", "-@all",
            *[f"+{c}" for c in AGENT_COMMANDS]]


def create_user(client: redis_lib.Redis, agent_id: int, password_hash: str) -> None:
    """Create (or reset) agent ``agent_id``'s Redis user and remember its rules in
    :data:`REGISTRY_KEY`. Raises redis errors (e.g. a Redis without ACLs: < 6.0)."""
    client.execute_command("ACL", "SETUSER", user_name(agent_id), *rules(agent_id, password_hash))
    client.hset(REGISTRY_KEY, str(int(agent_id)), json.dumps(
        {"user": user_name(agent_id), "prefix": key_prefix(agent_id), "password_sha256": password_hash}))


def delete_user(client: redis_lib.Redis, agent_id: int) -> int:
    """Revoke agent ``agent_id`` on the broker: forget its rules, switch its user off (no new
    connection authenticates), kill every connection it has open (``CLIENT KILL USER``) and
    delete the user. Returns the number of connections killed. Its keys (lane, outbox) stay for
    the cloud to inspect."""
    user = user_name(agent_id)
    client.hdel(REGISTRY_KEY, str(int(agent_id)))
    killed = 0
    if client.execute_command("ACL", "GETUSER", user) is not None:
        client.execute_command("ACL", "SETUSER", user, "off", "resetpass")
        try:
            killed = int(client.execute_command("CLIENT", "KILL", "USER", user))
        except redis_lib.ResponseError:  # nobody connected as that user
            killed = 0
    client.execute_command("ACL", "DELUSER", user)
    return killed


def registered(client: redis_lib.Redis) -> dict[int, dict]:
    """Agent id → its entry in :data:`REGISTRY_KEY` (every agent not revoked)."""
    out = {}
    for k, v in client.hgetall(REGISTRY_KEY).items():
        try:
            out[int(k)] = json.loads(v)
        except (ValueError, TypeError):
            log.warning("ignoring a malformed entry %r in %s", k, REGISTRY_KEY)
    return out


def reapply(client: redis_lib.Redis) -> int:
    """Recreate the Redis user of every registered agent that the server lacks (after a Redis
    restart). Returns how many were recreated."""
    made = 0
    for agent_id, entry in registered(client).items():
        if client.execute_command("ACL", "GETUSER", entry["user"]) is None:
            client.execute_command("ACL", "SETUSER", entry["user"], *rules(agent_id, entry["password_sha256"]))
            made += 1
    if made:
        log.info("recreated %d agent ACL user(s) on the broker", made)
    return made


def agent_url(broker_url: str, agent_id: int, password: str) -> str:
    """``broker_url`` (the broker as agents reach it: ``AGENT_BROKER_URL``, else ``REDIS_URL``)
    with agent ``agent_id``'s user name and ``password`` in it."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(broker_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user_name(agent_id))}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/0", parts.query, ""))
