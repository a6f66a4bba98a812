"""The message-template sandbox: Jinja2's immutable sandbox with limits on time, work and size.

Jinja2's sandbox keeps a template away from Python internals but lets it run as long and
build values as large as it likes: two nested ``range(100000)`` loops ran past 30 s and
``'a' * 10**9`` reached ``MemoryError``. :class:`LimitedSandbox` adds, per rendering (see
:func:`render_budget`):

- a deadline (:data:`RENDER_SECONDS`), checked at every loop step, call, operator and output;
- a step budget (:data:`MAX_STEPS`): loop iterations plus calls;
- a size budget (:data:`MAX_TEXT` characters) for the text a rendering outputs (including text
  captured by ``{% set %}`` blocks and macros) and for any one value built by ``*``, ``+``,
  ``~``, ``**``, ``%``, a filter or a call — checked *before* the value is built where the
  size is known in advance (repetition, concatenation, powers, padding widths).

Going over a limit raises :class:`TemplateLimitError`, which the message renderer turns
into a plain :class:`~dashboard.errors.MessageTemplateError`.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

RENDER_SECONDS = 2.0
MAX_STEPS = 200_000
MAX_TEXT = 1_000_000
MAX_POWER_DIGITS = 10_000
# A format string with a width or precision of seven digits or more ("%1000000000s", "{:>9999999}").
_HUGE_WIDTH = re.compile(r"\d{7,}")
_COUNT = "_recoup_count"
_JOIN = "_recoup_join"
_LITERAL = "_recoup_literal"


class TemplateLimitError(SecurityError):
    """A rendering went over one of the sandbox's limits (time, steps or size)."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    text: int = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("recoup_template_budget", default=None)


@contextmanager
def render_budget(seconds: float | None = None) -> Iterator[None]:
    """Give the renderings inside this block one budget of time (default
    :data:`RENDER_SECONDS`), steps and output size."""
    token = _BUDGET.set(_Budget(deadline=time.monotonic() + (RENDER_SECONDS if seconds is None else seconds)))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _spend(*, steps: int = 0, text: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps += steps
    budget.text += text
    if budget.steps > MAX_STEPS:
        msg = f"does more than {MAX_STEPS:,} loop steps and calls"
        raise TemplateLimitError(msg)
    if budget.text > MAX_TEXT:
        msg = f"writes more than {MAX_TEXT:,} characters"
        raise TemplateLimitError(msg)
    if time.monotonic() > budget.deadline:
        msg = f"takes longer than {RENDER_SECONDS:g} seconds"
        raise TemplateLimitError(msg)


def _too_big(size: int, what: str) -> None:
    if size > MAX_TEXT:
        msg = f"builds {what} of {size:,} items or characters (at most {MAX_TEXT:,})"
        raise TemplateLimitError(msg)


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)):
        _too_big(len(value), "a value")
    return value


def _check_arguments(args: Iterable[Any]) -> None:
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_TEXT:
            msg = f"passes the number {value if abs(value) < 10**30 else 'with over 30 digits'} where a size is read"
            raise TemplateLimitError(msg)
        if isinstance(value, str) and _HUGE_WIDTH.search(value) and ("%" in value or "{" in value):
            msg = "formats with a width of a million characters or more"
            raise TemplateLimitError(msg)


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend(steps=1)
        yield item


def _join(*parts: Any) -> str:
    # ``a ~ b``: the size is known before the text is built
    texts = [str(part) for part in parts]
    _too_big(sum(len(t) for t in texts), "a text")
    return "".join(texts)


def _literal(size: int) -> str:
    # literal template text written by one output statement (run once per loop step)
    _spend(text=size)
    return ""


def _limited_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1  # (environment or context,) value, arguments

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        _spend(steps=1)
        _check_arguments([*args[skip:], *kwargs.values()])
        if func.__name__ == "do_format" and len(args) >= skip:
            _check_arguments([args[skip - 1]])  # "%1000000000s" | format(x)
        return _sized(func(*args, **kwargs))

    return call


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits described in the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.globals.pop("lipsum", None)  # paragraphs of filler text on request: not a merge field
        self.globals.update({_COUNT: _counted, _JOIN: _join, _LITERAL: _literal})
        self.filters = {name: _limited_filter(func) for name, func in self.filters.items()}

    @staticmethod
    @pass_eval_context
    def _finalize(eval_context: EvalContext, value: Any) -> Any:
        # Taking the evaluation context keeps Jinja from computing outputs at compile time,
        # where no budget applies: every ``{{ ... }}`` is counted when it runs.
        _spend(text=len(value) if isinstance(value, str) else 0)
        return value

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):
            loop.iter = self._helper(_COUNT, [loop.iter], loop.iter.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            concat.nodes = [self._helper(_JOIN, list(concat.nodes), concat.lineno)]
        for output in list(tree.find_all(nodes.Output)):
            size = sum(len(n.data) for n in output.nodes if isinstance(n, nodes.TemplateData))
            if size:
                output.nodes.append(self._helper(_LITERAL, [nodes.Const(size, lineno=output.lineno)], output.lineno))
        return tree

    def _helper(self, name: str, arguments: list[nodes.Expr], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.Name(name, "load", lineno=lineno), arguments, [], None, None, lineno=lineno)
        return call.set_environment(self)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend(steps=1)
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    _too_big(len(sequence) * max(times, 0), "a repeated value")
        elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _too_big(len(left) + len(right), "a joined value")
        elif operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
            if abs(left) > 1 and right > 0 and right * math.log10(abs(left)) > MAX_POWER_DIGITS:
                msg = f"computes a power with more than {MAX_POWER_DIGITS:,} digits"
                raise TemplateLimitError(msg)
        elif operator == "%" and isinstance(left, str):
            _check_arguments([left])
        return _sized(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # "{:>1000000000}".format(x): the width is in the string the method is bound to
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _check_arguments([owner])
        return super().wrap_str_format(value)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(steps=1)
        _check_arguments([*args, *kwargs.values()])
        return _sized(super().call(__context, __obj, *args, **kwargs))
