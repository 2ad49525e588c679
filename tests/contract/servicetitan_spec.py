"""The four public ServiceTitan v2 specs for the contract tests, and validation of a real HTTP
exchange (the request as ``requests`` sent it, the response as the emulator answered) against
the operation the path names. Free of pytest fixtures so any test module can import it.

The specs are read from ``$ML_CONNECTOR_SPECS_DIR/servicetitan/`` or
``<checkout>/../shared/specs/servicetitan/`` (the same place ``tests/contract/conftest.py``
looks). A missing spec raises AssertionError: the tests fail, nothing is skipped.

One deviation class is tolerated and reported, never silently: ``null`` for a property the
spec writes as ``{oneOf: [$ref X], nullable: true}``. Under OpenAPI 3.0.3 semantics (which
openapi-core applies) ``nullable`` does not reach into ``oneOf``, so ``null`` fails there,
although the spec's authors clearly mean "X or null" (e.g. InventoryReceiptResponse.shipTo,
InventoryReceiptItemResponse.generalLedgerAccount, SkuVendorResponse.primarySubAccount).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_HOST = "https://api.servicetitan.io"   # OAS servers[0]
SPEC_FILES = {
    "inventory": "servicetitan/tenant-inventory-v2.yml",
    "pricebook": "servicetitan/tenant-pricebook-v2.yml",
    "settings": "servicetitan/tenant-settings-v2.yml",
    "accounting": "servicetitan/tenant-accounting-v2.yml",
}


def specs_dir() -> Path:
    """Directory holding the public specs (as ``tests/contract/conftest.py`` finds it)."""
    env = os.environ.get("ML_CONNECTOR_SPECS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "specs"


@functools.lru_cache(maxsize=None)
def spec_dict(module: str) -> dict:
    """One spec as a dict (``module`` ∈ inventory, pricebook, settings, accounting)."""
    path = specs_dir() / SPEC_FILES[module]
    assert path.exists(), f"ServiceTitan spec not found at {path} (set ML_CONNECTOR_SPECS_DIR)"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


@functools.lru_cache(maxsize=None)
def openapi(module: str):
    """An ``openapi_core.OpenAPI`` over one spec (spec self-validation skipped: slow)."""
    from openapi_core import Config, OpenAPI
    return OpenAPI.from_dict(spec_dict(module), config=Config(spec_validator_cls=None))


def schema_validator(module: str, name: str):
    """A validator for ``components.schemas[name]`` of one spec (refs resolved in that spec)."""
    from openapi_schema_validator import OAS30Validator
    spec = spec_dict(module)
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


@dataclass
class _Req:
    path: str
    method: str
    parameters: object
    body: bytes | None = None
    content_type: str = "application/json"
    host_url: str = SPEC_HOST


@dataclass
class _Resp:
    status_code: int
    data: bytes
    headers: Headers
    content_type: str = "application/json"


@dataclass
class Verdict:
    """What validation found: tolerated deviations (path, message) per side."""

    request: list = field(default_factory=list)
    response: list = field(default_factory=list)


def _schema_errors(exc: BaseException) -> list:
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.extend(getattr(exc, "schema_errors", None) or [])
        exc = exc.__cause__ or exc.__context__
    return out


def _path_str(err) -> str:
    return ".".join("*" if isinstance(p, int) else str(p) for p in err.absolute_path)


def _tolerated(err) -> bool:
    """``null`` where the schema is ``{oneOf: [...], nullable: true}`` (module docstring), also
    when it sits deeper inside such a ``oneOf`` (then every error of the branch must be one)."""
    if err.validator != "oneOf":
        return False
    if err.instance is None:
        return isinstance(err.schema, dict) and err.schema.get("nullable") is True
    return bool(err.context) and all(_tolerated(sub) for sub in err.context)


def _judge(what: str, exc: Exception) -> list:
    errors = _schema_errors(exc)
    assert errors, f"{what}: spec validation failed without schema errors: {exc!r}"
    bad = [(_path_str(e), e.message) for e in errors if not _tolerated(e)]
    assert not bad, f"{what} breaks the spec: {bad}"
    return [(_path_str(e), e.message) for e in errors]


def module_of(path: str) -> str:
    """``/inventory/v2/tenant/1/vendors`` → ``inventory``."""
    return path.strip("/").split("/", 1)[0]


def to_spec_request(prepared) -> _Req:
    """The openapi-core view of a ``requests.PreparedRequest`` (what went over the wire)."""
    url = urlsplit(prepared.url)
    body = prepared.body
    if isinstance(body, str):
        body = body.encode()
    from openapi_core.datatypes import RequestParameters
    params = RequestParameters(
        query=ImmutableMultiDict(parse_qsl(url.query, keep_blank_values=True)),
        header=Headers(dict(prepared.headers)))
    return _Req(path=url.path, method=prepared.method.lower(), parameters=params, body=body,
                content_type=prepared.headers.get("Content-Type", "application/json"))


def validate_exchange(resp, *, request_valid: bool = True) -> Verdict:
    """Validate ``resp.request`` and ``resp`` against the spec operation of its path. With
    ``request_valid=False`` the request must be one the spec rejects (a deliberately bad call:
    the spec and the emulator's 400 agree). Raises AssertionError on any error but the
    tolerated kind; returns the tolerated deviations."""
    req = to_spec_request(resp.request)
    api = openapi(module_of(req.path))
    verdict = Verdict()
    try:
        api.validate_request(req)
    except Exception as exc:  # noqa: BLE001 - inspected in _judge
        if request_valid:
            verdict.request = _judge(f"{req.method.upper()} {req.path} request", exc)
        else:
            assert _schema_errors(exc), f"request refused for another reason: {exc!r}"
    else:
        assert request_valid, f"{req.method.upper()} {req.path}: the spec accepts this request"
    sresp = _Resp(resp.status_code, resp.content, Headers(dict(resp.headers)),
                  resp.headers.get("Content-Type", "application/json"))
    try:
        api.validate_response(req, sresp)
    except Exception as exc:  # noqa: BLE001 - inspected in _judge
        verdict.response = _judge(f"{req.method.upper()} {req.path} -> {resp.status_code}", exc)
    return verdict


def validate_schema(module: str, name: str, instance) -> list:
    """Validate a JSON value against a named component schema (for answers of endpoints the
    spec snapshot lacks, e.g. ``ModificationResponse`` of ``POST receipts``)."""
    errors = list(schema_validator(module, name).iter_errors(instance))
    bad = [(_path_str(e), e.message) for e in errors if not _tolerated(e)]
    assert not bad, f"{name}: {bad}"
    return [(_path_str(e), e.message) for e in errors]
