"""`fast_init`: a quicker constructor for the frozen dataclasses on the hot paths (the sizing records of
`risk/`, the `Quote` a replay builds per modelled option quote). In the shared leaf so every room uses one.

Why: a frozen dataclass's generated `__init__` stores each field through
`object.__setattr__(self, name, value)`, a global lookup and a call per field: a 24-field
`Decision` costs ~6 us to build, a tenth of a whole sizing decision. The constructor made here
has the same signature, defaults, default factories and `__post_init__`, and stores the fields
directly (a `__dict__` built whole, or through each slot's descriptor), so instances are identical
and still frozen (assignment after construction raises as before). Only plain fields are supported
(no InitVar, no keyword-only, no init=False): anything else is refused at import.

Why the `__dict__` is built whole and assigned, not filled key by key through `self.__dict__`:
filled that way, it is a "split" dict sharing the class's key table, and Python 3.11's specialized
attribute read (LOAD_ATTR_WITH_HINT) deoptimizes on every read of a split dict, so every read of
the record's fields fell back to the generic lookup. A dict of its own (one dict display, built in
C) reads at the specialized speed and is quicker to build than the stores one by one.

Why the class attributes of the defaults are removed (non-slotted records): the dataclass leaves each
plain default on the class, where it shadows nothing the instance lacks (this constructor stores
every field) but still keeps 3.11 from specializing the field's read when the default's type is a
Python class (an Enum member, a frozen record): such a class could gain a `__get__` later, so the
read stays the generic lookup (~3x a specialized one: `SizingRequest.trading_state`, `.events`).
The defaults live on in `__init__` and in `dataclasses.fields()`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")
_FACTORY = object()  # the default of a parameter whose field has a default_factory


def fast_init(cls: type[T]) -> type[T]:
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: fast_init is for frozen dataclasses")
    fields = dataclasses.fields(cls)
    if len(fields) != len(cls.__dataclass_fields__) or any(not f.init or f.kw_only for f in fields):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: fast_init supports plain init fields only")
    slotted = "__slots__" in cls.__dict__
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY, "_setattr": object.__setattr__}
    params, body = ["self"], []
    for f in fields:
        name = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_FACTORY")
            body.append(f"if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            params.append(name)
        if slotted:
            namespace[f"_set_{name}"] = cls.__dict__[name].__set__  # the slot's own descriptor
            body.append(f"_set_{name}(self, {name})")
    if not slotted:
        body.append(f"_setattr(self, '__dict__', {{{', '.join(f'{f.name!r}: {f.name}' for f in fields)}}})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + "\n".join(f"    {line}" for line in body) + "\n"
    exec(source, namespace)  # noqa: S102 - source built above from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[misc]
    if not slotted:
        for f in fields:
            if f.name in cls.__dict__:
                delattr(cls, f.name)
    return cls
