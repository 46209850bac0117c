"""CLI group `cutover soap`: see a legacy core before wiring it, and try one call.

``describe`` lists a WSDL's services, operations and their request and response element
trees, and with ``--skeleton`` writes a starter mapping that loads; ``try`` sends one
transaction through a mapping and prints the request XML, the response XML and the canonical
outcome, or the exact error with the element path. Card numbers never appear in clear: every
card number in what is printed is tokenised (CUTOVER_TOKEN_KEY) or masked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
soap_app = typer.Typer(help="See a SOAP core before wiring it; try one call.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount `cutover soap`."""
    soap_app.command("describe")(describe)
    soap_app.command("try")(try_call)
    app.add_typer(soap_app, name="soap")


def _tree_lines(nodes: list[Any], depth: int) -> list[str]:
    lines = []
    for node in nodes:
        flags = ", ".join(f for f, on in (("required", node.required),
                                          ("repeats", node.repeats)) if on) or "optional"
        lines.append(f"{'  ' * depth}{node.name:<{max(1, 30 - 2 * depth)}} {node.type_name:<18}"
                     f" {flags}")
        lines += _tree_lines(node.children, depth + 1)
    return lines


def _wsdl_for_skeleton(wsdl: str, target: Path) -> str:
    if "://" in wsdl:
        return wsdl
    return os.path.relpath(Path(wsdl).resolve(), target.resolve().parent)


def describe(
    wsdl: str = typer.Argument(..., help="WSDL path or URL."),
    operation: str | None = typer.Option(None, "--operation", help="Only this operation (and"
                                         " the one --skeleton writes; default: the first)."),
    skeleton_out: Path | None = typer.Option(None, "--skeleton", help="Write a starter mapping"
                                             " TOML for the operation here."),
    force: bool = typer.Option(False, "--force", help="Overwrite --skeleton's file."),
    as_json: bool = typer.Option(False, "--json", help="Print the trees as one JSON object."),
) -> None:
    """List services, operations and request/response element trees (type, required, repeats).

    Example: cutover soap describe cutover/fixtures/wsdl/awkward_core.wsdl --skeleton m.toml
    """
    from cutover.adapters.mapping import load_mapping
    from cutover.adapters.wsdl_tree import (
        check_mapping_paths,
        find_operation,
        open_wsdl,
        operation_trees,
        skeleton,
    )
    from cutover.errors import InputError
    client = open_wsdl(wsdl)
    trees = operation_trees(client)
    if operation is not None:
        trees = [find_operation(trees, operation, wsdl)]
    if not trees:
        raise InputError(f"WSDL {wsdl}: no SOAP operations found")
    if as_json:
        typer.echo(json.dumps([t.as_dict() for t in trees], indent=2))
    else:
        for tree in trees:
            out.print(f"service {tree.service} · port {tree.port} · operation {tree.operation}"
                      f" ({tree.style or 'document'})")
            out.print(f"  request element {tree.request_element or '(none)'}")
            out.print("\n".join(_tree_lines(tree.request, 2)) or "    (no elements)")
            out.print(f"  response element {tree.response_element or '(none)'}"
                      f" in {tree.response_namespace or '(no namespace)'}")
            out.print("\n".join(_tree_lines(tree.response, 2)) or "    (no elements)")
    if skeleton_out is None:
        return
    if skeleton_out.exists() and not force:
        raise InputError(f"{skeleton_out} exists; add --force to overwrite it")
    tree = trees[0]
    skeleton_out.parent.mkdir(parents=True, exist_ok=True)
    skeleton_out.write_text(skeleton(tree, _wsdl_for_skeleton(wsdl, skeleton_out),
                                     tree.response_namespace), encoding="utf-8")
    check_mapping_paths(load_mapping(skeleton_out), client, wsdl)
    err.print(f"wrote {skeleton_out}: a mapping for {tree.operation} that loads; fill in its"
              " TODOs (docs/mapping.md)")


def _read_txn(spec: str) -> dict[str, Any]:
    from cutover.errors import InputError
    text = spec
    if spec.startswith("@"):
        try:
            text = Path(spec[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--txn {spec}: cannot read: {exc.strerror}") from exc
    try:
        txn = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--txn {spec[:60]}: not JSON: {exc}") from exc
    if not isinstance(txn, dict):
        raise InputError(f"--txn {spec[:60]}: expected one JSON object of canonical fields")
    return txn


def _scrub(data: bytes | str | None) -> str:
    """Pretty XML text with every card number tokenised (with the key) or masked."""
    if data is None:
        return "(nothing)"
    from lxml import etree

    from cutover.adapters.tokenize import mask_pans
    from cutover.xmlsafe import parse_xml
    raw = data.encode() if isinstance(data, str) else data
    try:
        text = etree.tostring(parse_xml(raw), pretty_print=True, encoding="unicode")
    except Exception:  # not XML (an HTML error page): shown as text, still scrubbed
        text = raw.decode("utf-8", "replace")
    key = os.environ.get("CUTOVER_TOKEN_KEY")
    if key:
        from cutover.adapters.cassette import tokenize_text
        return tokenize_text(text, key.encode())
    return mask_pans(text)


def try_call(
    wsdl: str = typer.Option(None, "--wsdl", help="WSDL path or URL (default: the mapping's)."),
    mapping: Path = typer.Option(..., "--mapping", help="The mapping TOML."),
    txn: str = typer.Option(..., "--txn", help="@file.json, or the JSON object itself."),
    address: str | None = typer.Option(None, "--address", help="Endpoint URL overriding the"
                                                               " WSDL's."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Send one transaction and print the request XML, the response XML and the outcome.

    Exit 2 when the mapping cannot express the transaction (the field or element is named),
    3 when the call failed (the core's or zeep's message, word for word).
    """
    from cutover.adapters.soap import SoapAdapter, SoapOptions
    from cutover.adapters.tokenize import mask_pans
    from cutover.adapters.transport import BreakerOpen, CallFailed
    from cutover.errors import ConfigError, InputError, LegacyFault
    record = _read_txn(txn)
    if record.get("pan"):
        record["card_token"] = record.pop("pan")
    adapter = SoapAdapter(mapping, wsdl=wsdl, options=SoapOptions(address=address,
                                                                  retry_attempts_max=1))
    failure: Exception | None = None
    try:
        fields = adapter.call_raw(record)
    except KeyError as exc:
        raise InputError(f"--txn: {exc.args[0]}") from exc
    except ValueError as exc:
        raise InputError(f"--txn: {mask_pans(str(exc))}") from exc
    except (CallFailed, BreakerOpen) as exc:
        failure, fields = exc, {}
    finally:
        sent, received = adapter.last_exchange()
        adapter.close()
    outcome = _outcome(adapter, fields, failure, record)
    if as_json:
        typer.echo(json.dumps({"request_xml": _scrub(sent), "response_xml": _scrub(received),
                               "outcome": outcome}, indent=2, default=str))
    else:
        out.print("request:", style="bold")
        out.print(_scrub(sent), markup=False)
        out.print("response:", style="bold")
        out.print(_scrub(received), markup=False)
        out.print("outcome:", style="bold")
        out.print(json.dumps(outcome, indent=2, default=str), markup=False)
    if failure is not None:
        message = mask_pans(str(failure))
        if getattr(failure, "reason", "") == "bad_request":
            raise ConfigError(f"{mapping}: the request could not be built: {message}")
        raise LegacyFault(f"the call failed: {message}")


def _outcome(adapter: Any, fields: dict[str, Any], failure: Exception | None,
             txn: dict[str, Any]) -> dict[str, Any]:
    if failure is not None:
        from cutover.adapters.tokenize import mask_pans
        return {"txn_id": txn.get("txn_id"), "legacy_decision": "error",
                "legacy_reason": getattr(failure, "reason", "error"),
                "detail": mask_pans(str(failure))}
    code = fields.get("response_code") or ""
    decision, reason = adapter.codes.lookup(code)
    return {"txn_id": txn.get("txn_id"), "legacy_decision": decision, "legacy_code": code,
            "legacy_reason": reason, "legacy_route": fields.get("route"),
            "legacy_fee_minor": int(fields.get("fee_minor") or 0)}
