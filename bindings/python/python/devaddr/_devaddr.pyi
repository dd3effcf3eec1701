"""The native module (PyO3). Use the functions of ``devaddr`` instead."""

from typing import List, Optional, Tuple

_Returned = Tuple[str, List[str], List[str], List[Tuple[str, str]]]

class Failure(Exception):
    """args: (kind, report as JSON, report as text)."""

def plan(
    text: str,
    name: str,
    format: Optional[str] = None,
    policy: Optional[str] = None,
    input: Optional[str] = None,
    new_domain: bool = False,
    previous: Optional[str] = None,
    previous_name: Optional[str] = None,
    allow_moves: bool = False,
    models: Optional[str] = None,
    work_limit: Optional[int] = None,
) -> _Returned: ...
def hotplug(
    running: str,
    name: str,
    add: str,
    add_name: str,
    format: Optional[str] = None,
    models: Optional[str] = None,
    work_limit: Optional[int] = None,
) -> _Returned: ...
def capacity(
    text: str,
    name: str,
    kinds: List[str] = ...,
    node: Optional[int] = None,
    bar64: Optional[str] = None,
    live: bool = False,
    format: Optional[str] = None,
    models: Optional[str] = None,
    work_limit: Optional[int] = None,
) -> _Returned: ...
def check(
    text: str,
    name: str,
    format: Optional[str] = None,
    models: Optional[str] = None,
    work_limit: Optional[int] = None,
) -> _Returned: ...
def models(name: Optional[str] = None, format: Optional[str] = None, models: Optional[str] = None) -> str: ...
def version() -> str: ...
