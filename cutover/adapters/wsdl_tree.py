"""The element trees of a WSDL's operations: to see a core before wiring it, and to check a
mapping's paths against it.

``soap describe`` prints these trees (services, operations, request and response elements
with their types, whether each is required and whether it repeats); ``--skeleton`` turns one
operation's tree into a starter mapping; ``check_mapping_paths`` refuses a mapping whose path
is not in the WSDL, naming the file, the key and the paths that exist. Paths use the mapping
syntax: local names separated by ``/``, relative to the operation's request or response
element (cutover.adapters.mapping).

Raises ``ConfigError`` for an unreadable WSDL or a path that is not in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from cutover.adapters.mapping import PATH_SEP, REQUEST_FIELDS, Mapping
from cutover.errors import ConfigError

#: Deeper element trees than this are cut (a recursive schema would never end).
DEPTH_MAX: Final = 12
#: Elements listed per tree at most; a larger schema is cut with a note.
NODES_MAX: Final = 2_000
#: Paths an error message lists before "...".
PATHS_SHOWN_MAX: Final = 25


@dataclass
class Node:
    """One element: its name, XSD type, whether it must be present and whether it repeats."""

    name: str
    type_name: str
    required: bool
    repeats: bool
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type_name, "required": self.required,
                "repeats": self.repeats, "children": [c.as_dict() for c in self.children]}


@dataclass
class OperationTree:
    """One operation of one port: its request and response element trees."""

    service: str
    port: str
    operation: str
    style: str
    request: list[Node]
    response: list[Node]
    request_element: str = ""
    response_element: str = ""
    response_namespace: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "port": self.port, "operation": self.operation,
                "style": self.style, "request_element": self.request_element,
                "response_namespace": self.response_namespace,
                "response_element": self.response_element,
                "request": [n.as_dict() for n in self.request],
                "response": [n.as_dict() for n in self.response]}


def open_wsdl(source: str) -> Any:
    """A zeep client for ``source`` (path or URL) with DTDs, entities and external refs off."""
    import zeep
    from zeep.exceptions import Error as ZeepError
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                             forbid_external=True, xml_huge_tree=False)
    try:
        return zeep.Client(source, settings=settings)
    except (ZeepError, OSError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"WSDL {source}: cannot read it: {exc}") from exc
    except Exception as exc:  # lxml and requests raise their own types for a bad document
        raise ConfigError(f"WSDL {source}: cannot read it: {type(exc).__name__}: {exc}"
                          ) from exc


def _type_name(element: Any) -> str:
    xsd_type = getattr(element, "type", None)
    qname = getattr(xsd_type, "qname", None)
    if qname is not None and getattr(qname, "localname", None):
        return f"xsd:{qname.localname}" if "XMLSchema" in str(qname.namespace) else qname.localname
    return getattr(xsd_type, "name", None) or type(element).__name__.lower()


def _nodes(xsd_type: Any, depth: int, budget: list[int]) -> list[Node]:
    elements = getattr(xsd_type, "elements", None)
    if depth >= DEPTH_MAX or not elements:
        return []
    out = []
    for name, element in elements:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        max_occurs = getattr(element, "max_occurs", 1)
        node = Node(name=str(name), type_name=_type_name(element),
                    required=int(getattr(element, "min_occurs", 1) or 0) > 0,
                    repeats=max_occurs == "unbounded" or int(max_occurs or 1) > 1)
        node.children = _nodes(getattr(element, "type", None), depth + 1, budget)
        out.append(node)
    return out


def _body_tree(message: Any) -> tuple[str, list[Node]]:
    body = getattr(message, "body", None)
    if body is None:
        return "", []
    return str(getattr(body, "name", "") or ""), _nodes(getattr(body, "type", None), 0,
                                                         [NODES_MAX])


def operation_trees(client: Any) -> list[OperationTree]:
    """Every (service, port, operation) of the WSDL with its request and response trees."""
    out = []
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            binding = port.binding
            for name, op in binding._operations.items():  # noqa: SLF001 - zeep's public view
                req_el, request = _body_tree(op.input)
                resp_el, response = _body_tree(op.output) if op.output else ("", [])
                qname = getattr(getattr(op.output, "body", None), "qname", None)
                out.append(OperationTree(service.name, port.name, name,
                                         getattr(op, "style", "") or "", request, response,
                                         req_el, resp_el, str(getattr(qname, "namespace", "")
                                                              or "")))
    return out


def leaf_paths(nodes: list[Node], prefix: str = "") -> dict[str, Node]:
    """path -> node of every element of a tree (inner elements too)."""
    out: dict[str, Node] = {}
    for node in nodes:
        path = f"{prefix}{PATH_SEP}{node.name}" if prefix else node.name
        out[path] = node
        out.update(leaf_paths(node.children, path))
    return out


def find_operation(trees: list[OperationTree], operation: str, source: str) -> OperationTree:
    """The tree of ``operation``; ConfigError naming the operations that exist."""
    for tree in trees:
        if tree.operation == operation:
            return tree
    names = sorted({t.operation for t in trees})
    raise ConfigError(f"WSDL {source}: no operation {operation!r}; it has: {', '.join(names)}")


def _refuse(mapping: Mapping, key: str, path: str, known: dict[str, Node]) -> ConfigError:
    shown = sorted(known)[:PATHS_SHOWN_MAX]
    more = "" if len(known) <= PATHS_SHOWN_MAX else f", ... ({len(known)} in all)"
    return ConfigError(f"{mapping.source} {key}: path {path!r} is not in the WSDL's "
                       f"{mapping.operation} {key.split('.')[0]}; allowed: "
                       f"{', '.join(shown)}{more}")


def check_mapping_paths(mapping: Mapping, client: Any, source: str) -> None:
    """Raise ConfigError unless every path of ``mapping`` is an element of its operation."""
    tree = find_operation(operation_trees(client), mapping.operation, source)
    request = leaf_paths(tree.request)
    response = leaf_paths(tree.response)
    if not request and not response:
        return  # an rpc-style or schema-less operation: zeep checks it at call time
    for fmap in mapping.request:
        path = PATH_SEP.join(fmap.path)
        if path not in request:
            raise _refuse(mapping, f"request.{fmap.canonical}", path, request)
    for path in [PATH_SEP.join(p) for p, _ in mapping.constants]:
        if path not in request:
            raise _refuse(mapping, f"constants.{path!r}", path, request)
    for path in [PATH_SEP.join(g.path) for g in mapping.generated]:
        if path not in request:
            raise _refuse(mapping, f"generated.{path!r}", path, request)
    for path in mapping.response_paths():
        if path not in response:
            raise _refuse(mapping, f"response.{path!r}", path, response)


def _guess(name: str) -> str | None:
    """A canonical field whose name matches an element name closely, for the skeleton."""
    key = name.lower().replace("_", "")
    for canonical in REQUEST_FIELDS:
        if canonical.replace("_", "") == key:
            return canonical
    return None


def skeleton(tree: OperationTree, wsdl: str, namespace: str) -> str:
    """A starter mapping for one operation: every required request element with a TODO."""
    lines = [f"# Starter mapping for {tree.operation} ({tree.service}/{tree.port}), written by",
             "# `cutover soap describe --skeleton`. Replace each TODO; docs/mapping.md has every key.",
             f"wsdl = {_q(wsdl)}", f"operation = {_q(tree.operation)}",
             f"namespace = {_q(namespace)}",
             "# true only if the core answers the same txn twice without booking it twice",
             "idempotent = false", "", "[request]"]
    request = leaf_paths(tree.request)
    leaves = [(p, n) for p, n in request.items() if not n.children and _required(p, request)]
    todo = []
    for path, node in leaves:
        canonical = _guess(node.name)
        if canonical:
            lines.append(f"{canonical} = {{ element = {_q(path)} }}")
        else:
            todo.append((path, node))
    if not any(_guess(n.name) == "txn_id" for _, n in leaves):
        # A mapping must carry txn_id (the idempotency key); the first free text element
        # takes it so the skeleton loads, with a TODO to check the choice.
        pick = next((i for i, (_, n) in enumerate(todo) if "string" in n.type_name),
                    0 if todo else None)
        path = todo.pop(pick)[0] if pick is not None else "TODO"
        lines.append(f"txn_id = {{ element = {_q(path)} }}  # TODO: the element for txn_id?")
    lines += ["", "# TODO: each required element below needs a canonical field in [request],",
              "# a [constants] value or a [generated] value; they are constants until then."]
    lines += ["[constants]"] + [f"{_q(p)} = \"TODO\"  # {n.type_name}" for p, n in todo]
    lines += ["", "[response]"]
    response = leaf_paths(tree.response)
    for path, node in response.items():
        if not node.children:
            lines.append(f"# {_q(path)} = \"TODO\"  # {node.type_name}; one of auth_code, route,"
                         " fee_minor, trace_id, response_ts")
    first = next((p for p, n in response.items() if not n.children), "TODO")
    lines += ["", "# TODO: the element(s) that carry the response code", "[response_code]",
              f"elements = [{_q(first)}]", "", "# TODO: what each response code means",
              '[codes."TODO"]', 'decision = "error"', 'reason = "unknown_code"', ""]
    return "\n".join(lines)


def _required(path: str, nodes: dict[str, Node]) -> bool:
    parts = path.split(PATH_SEP)
    return all(nodes[PATH_SEP.join(parts[:i])].required for i in range(1, len(parts) + 1))


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
