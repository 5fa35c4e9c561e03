"""How ``grade`` parses and shows its command line, apart from what its verbs do.

``DefaultVerbGroup`` makes ``grade <repo>`` mean ``grade repo <repo>`` without swallowing the
group's own options; ``Verb`` writes help in click's convention rather than Typer's.
"""

from __future__ import annotations

import re

import click
from typer.core import TyperCommand, TyperGroup


class DefaultVerbGroup(TyperGroup):
    """``grade <repo>`` means ``grade repo <repo>``: a first word that is neither a verb nor an
    option of ``grade`` itself (``-h``, ``--version``, ``--show-completion``...) starts a grading."""

    default_verb = "repo"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        own_options = {name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}
        if args and args[0] not in self.commands and args[0].split("=", 1)[0] not in own_options:
            args = [self.default_verb, *args]
        return super().parse_args(ctx, args)


class Verb(TyperCommand):
    """Help in click's convention: ``ARG`` required and ``[ARG]`` optional in the usage line,
    arguments listed by their metavar alone (Typer writes ``{ARG}`` and ``ARG <list[Path]>``)."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [re.sub(r"^\{(.*)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.param_type_name in sections:
                name, text = record
                sections[param.param_type_name].append(
                    (name.split(" <", 1)[0] if param.param_type_name == "argument" else name, text))
        for title, kind in (("Arguments", "argument"), ("Options", "option")):
            if sections[kind]:
                with formatter.section(title):
                    formatter.write_dl(sections[kind])
