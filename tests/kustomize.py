"""A small Kustomize renderer for the features deploy/k8s uses: resources (files and folders), images and
JSON 6902 patches with a kind/name target. The test compares it with ``kubectl kustomize`` where kubectl is
installed, so the two agree on these manifests; without kubectl it stands in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]


def render(folder: Path) -> list[Doc]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "images", "patches"}
    if unknown:
        raise ValueError(f"{folder}: this renderer does not know {sorted(unknown)}")
    docs: list[Doc] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        matched = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        if not matched:
            raise ValueError(f"{folder}: patch target {target} matches nothing")
        for doc in matched:
            for op in yaml.safe_load(patch["patch"]):
                apply(doc, op)
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in containers(doc):
                name, _, _ = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return docs


def containers(doc: Doc) -> list[Doc]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def apply(doc: Doc, op: Doc) -> None:
    """One JSON patch operation (add, replace, remove) at a JSON pointer."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op["op"] == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif isinstance(parent, list):
        value = copy.deepcopy(op["value"])
        if last == "-":
            parent.append(value)
        elif op["op"] == "add":
            parent.insert(int(last), value)
        else:
            parent[int(last)] = value
    else:
        if op["op"] == "replace" and last not in parent:
            raise KeyError(f"replace of a missing {op['path']}")
        parent[last] = copy.deepcopy(op["value"])
