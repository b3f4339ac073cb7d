"""The formula language: arithmetic over earlier features of a view, null in, null out.

A formula is a Python expression parsed with ``ast`` and compiled into closures over an
allow-list of nodes (numbers, names of earlier features, + - * /, comparisons, and/or/not,
min, max, coalesce); nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dataintel.services.features.records import FeatureCatalogError, FeatureScalar

Environment = Mapping[str, FeatureScalar | None]
Evaluator = Callable[[Environment], FeatureScalar | None]

_BINARY: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARISONS: Mapping[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS = ("min", "max", "coalesce")


def _apply(function: Callable[..., Any], *arguments: FeatureScalar | None) -> Any:
    if any(argument is None for argument in arguments):
        return None
    try:
        return function(*arguments)
    except ZeroDivisionError:
        return None


def _coalesce(*values: FeatureScalar | None) -> FeatureScalar | None:
    return next((value for value in values if value is not None), None)


def _compile_node(node: ast.expr, known: frozenset[str]) -> Evaluator:
    parts: list[Evaluator]
    match node:
        case ast.Constant(value=bool() | int() | float() as constant):
            return lambda _environment: constant
        case ast.Name(id=name):
            if name not in known:
                raise FeatureCatalogError(
                    f"'{name}' is not a feature declared earlier in the view;"
                    f" known: {', '.join(sorted(known)) or 'none'}."
                )
            return lambda environment: environment[name]
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            function = _BINARY[type(op)]
            first, second = _compile_node(left, known), _compile_node(right, known)
            return lambda environment: _apply(function, first(environment), second(environment))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            inner = _compile_node(operand, known)
            return lambda environment: _apply(operator.neg, inner(environment))
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            inner = _compile_node(operand, known)
            return lambda environment: _apply(operator.not_, inner(environment))
        case ast.BoolOp(op=op, values=values):
            parts = [_compile_node(value, known) for value in values]
            combine = all if isinstance(op, ast.And) else any
            return lambda environment: _apply(
                lambda *items: combine(items), *(part(environment) for part in parts)
            )
        case ast.Compare(left=left, ops=[op], comparators=[right]) if type(op) in _COMPARISONS:
            compare = _COMPARISONS[type(op)]
            first, second = _compile_node(left, known), _compile_node(right, known)
            return lambda environment: _apply(compare, first(environment), second(environment))
        case ast.Call(func=ast.Name(id=function_name), args=arguments, keywords=[]) if (
            function_name in _FUNCTIONS and arguments
        ):
            parts = [_compile_node(argument, known) for argument in arguments]
            if function_name == "coalesce":
                return lambda environment: _coalesce(*(part(environment) for part in parts))
            function = min if function_name == "min" else max
            return lambda environment: _apply(function, *(part(environment) for part in parts))
    raise FeatureCatalogError(
        f"'{ast.unparse(node)}' is not allowed in a formula: use numbers, earlier features,"
        " + - * /, comparisons, and/or/not, min(), max() and coalesce()."
    )


def compile_formula(text: str, known: Iterable[str]) -> Evaluator:
    """A formula's evaluator over the values of the ``known`` features."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise FeatureCatalogError(f"formula '{text}' does not parse: {error.msg}.") from None
    return _compile_node(tree.body, frozenset(known))
