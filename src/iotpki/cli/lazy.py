"""The root command group loads a sub-command's module only when that sub-command runs.

`iotpki --help` lists every command from the short help kept here, so it imports no
protocol server, database or key code; `iotpki cert list` imports the certificate commands
and what they use, nothing of the servers, the demo or the fleet simulator. A test keeps
each short help equal to the first sentence of the command's own help.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args, get_origin

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Command, Context

# name: ("module:attribute", short help). The attribute is a Typer app (a group) or a
# command function. Listed in the order `iotpki --help` shows them.
COMMANDS: dict[str, tuple[str, str]] = {
    "authority": ("iotpki.cli.authority:app", "Certificate authorities and trust anchors."),
    "cert": ("iotpki.cli.cert:app", "Issue, find and revoke certificates."),
    "profile": ("iotpki.cli.profile:app", "Certificate profiles (validated when loaded)."),
    "org": ("iotpki.cli.org:app", "Organizations, domains and supplier trust."),
    "registration": ("iotpki.cli.registration:app",
                     "Registrations: who may get which next identity."),
    "manifest": ("iotpki.cli.manifest:app", "Supply-chain manifests (CMS SignedData)."),
    "request": ("iotpki.cli.request:app", "Enrollment requests waiting on an operator."),
    "crl": ("iotpki.cli.crl:app", "Publish and inspect CRLs."),
    "device": ("iotpki.cli.device:app", "Devices: state, owner, identity history, events."),
    "webhook": ("iotpki.cli.webhook:app", "Webhook subscriptions and their deliveries."),
    "expiry": ("iotpki.cli.webhook:expiry_app", "The expiry monitor."),
    "principal": ("iotpki.cli.principal:app",
                  "API principals: API keys and client certificates."),
    "audit": ("iotpki.cli.audit:app", "The hash-chained audit log."),
    "config": ("iotpki.cli.config:app",
               "Settings kept with the data directory: the public URL."),
    "acme": ("iotpki.cli.acme:app", "ACME: External Account Binding keys, renewal windows."),
    "serve": ("iotpki.cli.serve:serve",
              "Serve OCSP, CRLs, CMP, SCEP and CMC over HTTP and, with --https-port, EST, ACME "
              "and the REST API."),
    "doctor": ("iotpki.cli.doctor:doctor",
               "Check the data directory, database, keys, public URLs and clock."),
    "demo": ("iotpki.cli.demo:demo", "Run the whole story end to end with a Mosquitto broker."),
    "fleet": ("iotpki.cli.fleet:app", "Fleet simulation: many virtual device agents."),
}


def load(name: str) -> Command:
    """The real command behind a lazily registered name."""
    target, _ = COMMANDS[name]
    module_name, attribute = target.split(":")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    parent = typer.Typer()
    if isinstance(obj, typer.Typer):  # a group, even of one command (`expiry scan`)
        parent.add_typer(obj, name=name)
        group = typer.main.get_command(parent)
        assert isinstance(group, TyperGroup)
        command = group.commands[name]
    else:
        parent.command(name=name)(obj)
        command = typer.main.get_command(parent)
    tidy_metavars(command)
    return command


def tidy_metavars(command: Command) -> None:
    """Help shows `TEXT`, `PATH`, `INTEGER` (as Click does) and nothing after a flag, not
    Typer's `<str>`, `<list[str]>` or `<bool>`."""
    for param in command.params:
        if isinstance(param, TyperArgument):  # its metavar would rename it in help
            param.display_type_rich = _constant(_metavar(param))  # type: ignore[method-assign,assignment]
        elif not isinstance(param, TyperOption):
            continue
        elif param.is_flag or param.count:
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = _metavar(param)
    _tidy_help_option(command)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            tidy_metavars(sub)


def _constant(text: str) -> Callable[[Context], str]:
    return lambda ctx: text


def _tidy_help_option(command: Command) -> None:
    """`--help` is made when help is shown, not kept in `params`: tidy it then."""
    make = command.get_help_option

    def get_help_option(ctx: Context) -> Any:
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option  # type: ignore[method-assign]


def _metavar(param: TyperOption | TyperArgument) -> str:
    kind = param.type_descriptor
    if kind.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in kind.choices or ()) + "]"
    if kind.is_path:
        return kind.path_type.upper()
    annotation: Any = kind.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    return {int: "INTEGER", float: "NUMBER"}.get(annotation, "TEXT")


class LazyGroup(TyperGroup):
    """Help lists placeholders built from `COMMANDS`; running a command loads the real one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_metavars(self)

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS:
            _, short_help = COMMANDS[cmd_name]
            return TyperCommand(cmd_name, help=short_help, short_help=short_help)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[
            str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name in COMMANDS:
            command = load(name)
        return name, command, rest
