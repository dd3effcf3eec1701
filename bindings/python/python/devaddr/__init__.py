"""devaddr: plan device addresses (PCI/PCIe, USB, drive) for QEMU/KVM guests.

The same library as the ``devaddr`` command, called in-process: the same output byte
for byte, the same errors. The GIL is released while a plan is solved, so threads plan
in parallel; processes (``concurrent.futures.ProcessPoolExecutor``) scale further.

>>> import devaddr
>>> plan = devaddr.plan({"machine": "q35", "devices": [{"id": "net0", "kind": "virtio-net"}]})
>>> [d["address"] for d in plan["devices"] if d["id"] == "net0"]
[{'type': 'pci', 'domain': 0, 'bus': 1, 'slot': 0, 'function': 0}]

Inputs (a spec, a plan, a device list) are dicts or YAML/JSON text; a libvirt domain is
XML text. Errors raise :class:`InputError` (bad input), :class:`InfeasibleError` (no
topology satisfies the request: ``binding``, ``requirement`` and ``fix`` say why and
what would help) or :class:`CheckError` (``check`` found rules broken: ``findings``),
all :class:`DevaddrError`. Warnings are :class:`DevaddrWarning` (``warnings`` module).
"""

import json
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _devaddr

__all__ = [
    "plan",
    "plan_text",
    "plan_domain",
    "replan",
    "Replanned",
    "hotplug",
    "hotplug_devices",
    "capacity",
    "check",
    "models",
    "version",
    "__version__",
    "DevaddrError",
    "InputError",
    "InfeasibleError",
    "CheckError",
    "InternalError",
    "DevaddrWarning",
]

Document = Union[str, Mapping[str, Any]]
"""A spec, plan or device list: YAML/JSON text or the same structure as a dict."""


class DevaddrWarning(UserWarning):
    """What the CLI prints as ``warning: …`` (a substitution, an option without effect,
    a plan not proven optimal at the work limit)."""


class DevaddrError(Exception):
    """A failed call. Its attributes are the first problem's fields of the CLI's
    ``--error-format json`` report; ``errors`` holds every problem (a spec with three
    unknown kinds gives three), ``report`` the whole report, ``text`` the CLI's text.

    Attributes: ``kind`` (``input``, ``infeasible``, ``check``, ``internal``), ``code``,
    ``location`` (dict: ``file``, ``path``, ``line``, ``column``, ``element`` when
    known) and each of them as an attribute, ``message``, and for an infeasible request
    ``binding``, ``requirement``, ``fix``; for a check ``findings``.
    """

    kind: str
    code: str
    location: Dict[str, Any]
    file: Optional[str]
    path: Optional[str]
    line: Optional[int]
    column: Optional[int]
    element: Optional[str]
    message: str
    binding: Optional[str]
    requirement: Optional[str]
    fix: Optional[str]
    findings: List[Dict[str, Any]]
    errors: List[Dict[str, Any]]
    report: Dict[str, Any]
    text: str

    def __init__(self, report: Dict[str, Any], text: str) -> None:
        self.report = report
        self.errors = report.get("errors", [])
        first = self.errors[0] if self.errors else {}
        self.text = text
        self.kind = first.get("kind", "internal")
        self.code = first.get("code", "")
        self.location = first.get("location", {})
        for key in ("file", "path", "line", "column", "element"):
            setattr(self, key, self.location.get(key))
        self.message = first.get("message", "")
        self.binding = first.get("binding")
        self.requirement = first.get("requirement")
        self.fix = first.get("fix")
        self.findings = first.get("findings", [])
        super().__init__(text.strip())


class InputError(DevaddrError):
    """Bad input: malformed, or naming what does not exist (the CLI's exit 2)."""


class InfeasibleError(DevaddrError):
    """Well-formed, but no topology satisfies it: ``binding``, ``requirement``, ``fix``."""


class CheckError(DevaddrError):
    """``check`` found rules broken: ``findings`` (``rule``, ``subject``, ``message``)."""


class InternalError(DevaddrError):
    """devaddr failed on its own (a bug)."""


_ERRORS = {
    "input": InputError,
    "infeasible": InfeasibleError,
    "check": CheckError,
}


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the native function; raise the typed error; issue the warnings."""
    try:
        out = fn(*args, **kwargs)
    except _devaddr.Failure as f:
        kind, report, text = f.args
        raise _ERRORS.get(kind, InternalError)(json.loads(report), text) from None
    if isinstance(out, tuple):
        for w in out[1]:
            warnings.warn(w, DevaddrWarning, stacklevel=3)
    return out


def _text(doc: Document) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


def plan_text(
    spec: Document,
    format: str = "yaml",
    *,
    policy: Optional[str] = None,
    previous: Optional[Document] = None,
    allow_moves: bool = False,
    name: str = "<spec>",
    previous_name: str = "<previous>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> str:
    """Plan a spec (or a plan, or a libvirt domain XML) and return the output text,
    byte-identical to ``devaddr plan FILE --format FORMAT`` (``yaml``, ``json``,
    ``tree``, ``dot``, ``svg``, ``qemu``, ``libvirt``). ``policy`` overrides the preset;
    ``previous`` replans keeping its addresses; ``name`` is how errors name the input."""
    text, _, _, _ = _call(
        _devaddr.plan,
        _text(spec),
        name,
        format=format,
        policy=policy,
        previous=None if previous is None else _text(previous),
        previous_name=previous_name,
        allow_moves=allow_moves,
        models=models,
        work_limit=work_limit,
    )
    return text


def plan(
    spec: Document,
    *,
    policy: Optional[str] = None,
    name: str = "<spec>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> Dict[str, Any]:
    """Plan a spec (dict or YAML/JSON text): the plan as a dict (``devaddr schema plan``)
    with every device's address and every controller."""
    out = plan_text(spec, "json", policy=policy, name=name, work_limit=work_limit, models=models)
    return json.loads(out)


def plan_domain(
    xml: str,
    new_domain: bool = False,
    *,
    format: str = "libvirt",
    name: str = "<domain>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> str:
    """Address a libvirt domain XML as libvirt would (``new_domain``: as ``virsh
    define`` does a new one): the domain XML with every address and controller, or its
    plan as ``yaml``/``json``/``tree``/``dot``/``svg``."""
    text, _, _, _ = _call(
        _devaddr.plan,
        xml,
        name,
        format=format,
        input="libvirt",
        new_domain=new_domain,
        models=models,
        work_limit=work_limit,
    )
    return text


class Replanned:
    """The result of :func:`replan`: ``plan`` (dict) and ``moves`` (the CLI's ``moved
    ID: FROM -> TO (REASON)`` lines; empty unless moves were allowed)."""

    def __init__(self, plan: Dict[str, Any], moves: List[str]) -> None:
        self.plan = plan
        self.moves = moves

    def to_dict(self) -> Dict[str, Any]:
        return {"plan": self.plan, "moves": list(self.moves)}

    def __repr__(self) -> str:
        return f"Replanned(devices={len(self.plan.get('devices', []))}, moves={self.moves!r})"


def replan(
    spec: Document,
    previous: Document,
    allow_moves: bool = False,
    *,
    name: str = "<spec>",
    previous_name: str = "<previous>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> Replanned:
    """Replan ``spec`` keeping every address and controller of the ``previous`` plan
    (``allow_moves``: move the fewest devices needed instead of failing)."""
    text, _, moves, _ = _call(
        _devaddr.plan,
        _text(spec),
        name,
        format="json",
        input="spec",
        previous=_text(previous),
        previous_name=previous_name,
        allow_moves=allow_moves,
        models=models,
        work_limit=work_limit,
    )
    return Replanned(json.loads(text), list(moves))


def _devices(add: Union[Document, Sequence[Mapping[str, Any]]]) -> str:
    return add if isinstance(add, str) else json.dumps(add)


def hotplug(
    running: Document,
    add: Union[Document, Sequence[Mapping[str, Any]]],
    format: str = "json",
    *,
    name: str = "<running>",
    add_name: str = "<add>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> Union[Dict[str, Any], str]:
    """Place the devices of ``add`` (a list of device dicts, or YAML/JSON; device XML
    for a domain) into the running guest ``running`` (its plan, or its domain XML):
    nothing moves. ``json`` (default) returns the updated plan as a dict; ``yaml``,
    ``libvirt`` and ``qemu`` return the CLI's text."""
    text, _, _, _ = _call(
        _devaddr.hotplug, _text(running), name, _devices(add), add_name,
        format=format, models=models, work_limit=work_limit,
    )
    return json.loads(text) if format == "json" else text


def hotplug_devices(
    running: Document,
    add: Union[Document, Sequence[Mapping[str, Any]]],
    *,
    name: str = "<running>",
    add_name: str = "<add>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> Dict[str, str]:
    """As :func:`hotplug`, the device XML to attach live (``virsh attach-device
    --live``), by id, in attach order."""
    _, _, _, files = _call(
        _devaddr.hotplug, _text(running), name, _devices(add), add_name,
        format="libvirt", models=models, work_limit=work_limit,
    )
    return dict(files)


def capacity(
    input: Document,
    kinds: Optional[Sequence[str]] = None,
    node: Optional[int] = None,
    *,
    bar64: Optional[str] = None,
    name: str = "<input>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """How many more devices of each kind fit (a spec is planned first; a domain XML is
    counted under libvirt's rules): a list of rows ``{kind, node, live, next_boot}``.
    ``bar64`` (``"128G"``, as ``--bar64``): the devices counted have a 64-bit BAR this
    large (live: only ports keeping that much room; next boot: within the aperture)."""
    text, _, _, _ = _call(
        _devaddr.capacity, _text(input), name, list(kinds or []), node, bar64=bar64,
        format="json", models=models, work_limit=work_limit,
    )
    return json.loads(text)


def check(
    plan: Document,
    *,
    name: str = "<plan>",
    work_limit: Optional[int] = None,
    models: Optional[str] = None,
) -> None:
    """Verify a plan, a fully addressed spec or a domain XML: returns when it is valid,
    raises :class:`CheckError` with the ``findings`` when it is not."""
    _call(_devaddr.check, _text(plan), name, models=models, work_limit=work_limit)


def models(name: Optional[str] = None, *, models: Optional[str] = None) -> Dict[str, Any]:
    """The hardware catalog, or one machine, controller model or device kind, as data
    (``devaddr models [NAME] --format json``)."""
    return json.loads(_call(_devaddr.models, name, "json", models))


def version() -> str:
    """devaddr's version."""
    return _devaddr.version()


__version__ = _devaddr.version()
