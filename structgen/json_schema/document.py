"""A schema document: its draft, its embedded resources (``$id``) and anchors, and ``$ref``
resolution within the document. Nothing is ever fetched: a reference that leaves the
document is an :class:`UnsupportedSchemaError`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urldefrag, urljoin

from ..errors import UnsupportedSchemaError

ROOT_URI = "https://structgen.invalid/root.json"  # a base urljoin can resolve against
DRAFTS = {"draft-04": 4, "draft-06": 6, "draft-07": 7, "2019-09": 2019, "2020-12": 2020}

# keywords whose value is a schema, a list of schemas, or a map of schemas
SCHEMA_KEYWORDS = {"additionalProperties", "additionalItems", "contains", "not", "if", "then", "else", "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema"}
SCHEMA_LIST_KEYWORDS = {"allOf", "anyOf", "oneOf", "prefixItems"}
SCHEMA_MAP_KEYWORDS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


@dataclass(frozen=True)
class Location:
    """Where a subschema sits: its JSON pointer in the document and its base URI."""

    pointer: str
    base: str

    def child(self, *parts: str | int) -> "Location":
        tail = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
        return Location(self.pointer + tail, self.base)


class SchemaDocument:
    def __init__(self, root) -> None:
        self.root = root
        self.draft = _draft_of(root)
        self.id_keyword = "id" if self.draft == 4 else "$id"
        self.resources: dict[str, tuple[object, str]] = {}  # uri → (schema, pointer)
        self.anchors: dict[str, tuple[object, str, str]] = {}  # uri#name → (schema, pointer, base)
        base = self._base_of(root, ROOT_URI)
        self.root_location = Location("", base)
        self.resources[ROOT_URI] = (root, "")
        self._index(root, "", base)

    def _base_of(self, schema, base: str) -> str:
        if isinstance(schema, dict) and not (self.draft <= 7 and "$ref" in schema):  # old drafts ignore $ref's siblings
            ident = schema.get(self.id_keyword)
            if isinstance(ident, str) and not ident.startswith("#"):
                return urldefrag(_join(base, ident))[0]
        return base

    def _index(self, schema, pointer: str, base: str) -> None:
        if not isinstance(schema, dict):
            return
        ident = schema.get(self.id_keyword)
        if self.draft <= 7 and "$ref" in schema:
            ident = None
        if isinstance(ident, str):
            if ident.startswith("#"):  # draft <= 7 plain-name fragment
                self.anchors[base + ident] = (schema, pointer, base)
            else:
                base = urldefrag(_join(base, ident))[0]
                self.resources.setdefault(base, (schema, pointer))
        anchor = schema.get("$anchor")
        if isinstance(anchor, str):
            self.anchors[f"{base}#{anchor}"] = (schema, pointer, base)
        for key, value in schema.items():
            here = f"{pointer}/{_escape(key)}"
            if key in SCHEMA_KEYWORDS:
                self._index(value, here, base)
            elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
                for i, sub in enumerate(value):
                    self._index(sub, f"{here}/{i}", base)
            elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                for name, sub in value.items():
                    self._index(sub, f"{here}/{_escape(name)}", base)
            elif key == "items":
                if isinstance(value, list):
                    for i, sub in enumerate(value):
                        self._index(sub, f"{here}/{i}", base)
                else:
                    self._index(value, here, base)
            elif key == "dependencies" and isinstance(value, dict):
                for name, sub in value.items():
                    self._index(sub, f"{here}/{_escape(name)}", base)

    def enter(self, schema, at: Location) -> Location:
        """The location inside ``schema``: its own ``$id`` (if any) sets the base URI."""
        base = self._base_of(schema, at.base)
        return at if base == at.base else Location(at.pointer, base)

    def resolve(self, ref: str, at: Location) -> tuple[object, Location, str]:
        """The schema ``ref`` points to from ``at``, its location, and a canonical key."""
        target = _join(at.base, ref)
        uri, fragment = urldefrag(target)
        if uri not in self.resources:
            raise UnsupportedSchemaError("$ref", at.pointer, f"remote reference {ref!r} is not fetched (only references within the document)")
        doc, doc_pointer = self.resources[uri]
        fragment = unquote(fragment)
        if fragment == "" or fragment.startswith("/"):
            schema, pointer, base = doc, doc_pointer, uri
            for raw in fragment.split("/")[1:]:
                part = raw.replace("~1", "/").replace("~0", "~")
                if isinstance(schema, dict) and part in schema:
                    schema = schema[part]
                elif isinstance(schema, list) and part.isdigit() and int(part) < len(schema):
                    schema = schema[int(part)]
                else:
                    raise UnsupportedSchemaError("$ref", at.pointer, f"reference {ref!r} points to nothing")
                pointer = f"{pointer}/{_escape(part)}"
                base = self._base_of(schema, base)
            return schema, Location(pointer, base), f"{uri}#{fragment}"
        found = self.anchors.get(f"{uri}#{fragment}")
        if found is None:
            raise UnsupportedSchemaError("$ref", at.pointer, f"anchor of reference {ref!r} is not defined")
        schema, pointer, base = found
        return schema, Location(pointer, base), f"{uri}#/{pointer}"


def _escape(part) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _draft_of(root) -> int:
    if isinstance(root, dict):
        uri = root.get("$schema")
        if isinstance(uri, str):
            for marker, draft in DRAFTS.items():
                if marker in uri:
                    return draft
            if uri.rstrip("#").endswith("draft-03/schema"):
                return 4
    return 2020


def _join(base: str, ref: str) -> str:
    """``ref`` resolved against ``base``; unlike :func:`urljoin` alone, also for bases whose
    scheme has no hierarchy (``urn:...``, ``tag:...``)."""
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", ref):
        return ref
    return urljoin(base, ref)
