"""`imagedex keys ...` and `imagedex users ...`: API keys for scripts, logins for people."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, NoReturn

import click

from imagedex.cli.common import CliContext, console, pass_ctx, print_json, print_lines

if TYPE_CHECKING:
    from imagedex.access.store import AccessStore, ApiKey, User
    from imagedex.config import Settings

ROLE_CHOICE = click.Choice(["viewer", "editor", "admin"])


def _store(ctx: CliContext) -> AccessStore:
    from imagedex.access.store import AccessStore

    return AccessStore.open(ctx.settings)


def _fail(exc: Exception) -> NoReturn:
    raise click.ClickException(str(exc)) from exc


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    value: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
    )
    return value


@click.group()
def keys() -> None:
    """API keys for scripts: `Authorization: Bearer idx_...` or `X-API-Key: idx_...`."""


@keys.command("create")
@click.option("--name", required=True, help="What will use the key (a script, a host).")
@click.option("--role", type=ROLE_CHOICE, required=True, help="viewer < editor < admin.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the key included).")
@pass_ctx
def keys_create(ctx: CliContext, name: str, role: str, as_json: bool) -> None:
    """Create a key; its secret is printed this once and never stored in clear."""
    from imagedex.access.roles import AccessError

    try:
        key, secret = _store(ctx).create_key(name, role)
    except AccessError as exc:
        _fail(exc)
    if as_json:
        print_json({**asdict(key), "key": secret})
        return
    console.print(f"created API key {key.id} ({key.name}, {key.role})")
    console.print("copy the key now, it is not shown again:")
    click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--active", is_flag=True, help="Leave revoked keys out.")
@pass_ctx
def keys_list(ctx: CliContext, as_json: bool, active: bool) -> None:
    """Keys with their role and last use (never their secrets)."""
    found = _store(ctx).api_keys(include_revoked=not active)
    json_data = [asdict(key) for key in found]
    print_lines(found, as_json, json_data, _key_line, empty="no API keys", empty_to=console)


def _key_line(key: ApiKey) -> str:
    state = f"revoked {key.revoked_at}" if key.revoked else "active"
    used = key.last_used_at or "never"
    return f"{key.id}  {key.role:<6}  {key.name}  (created {key.created_at}, used {used}, {state})"


@keys.command("revoke")
@click.argument("key_id")
@pass_ctx
def keys_revoke(ctx: CliContext, key_id: str) -> None:
    """Revoke a key at once: requests with it get 401 from then on."""
    from imagedex.access.roles import AccessError

    try:
        key = _store(ctx).revoke_key(key_id)
    except AccessError as exc:
        _fail(exc)
    console.print(f"revoked API key {key.id} ({key.name})")


@click.group()
def users() -> None:
    """People who log in to the web app (name and password)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, required=True, help="viewer < editor < admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def users_add(ctx: CliContext, name: str, role: str, password_stdin: bool) -> None:
    """Add a user (asks for the password twice unless --password-stdin)."""
    from imagedex.access.roles import AccessError
    from imagedex.access.store import check_name

    store = _store(ctx)
    try:
        check_name(name)
        if store.user(name) is not None:
            raise AccessError(f"a user named {name!r} already exists")
        store.add_user(name, role, _read_password(password_stdin))
    except AccessError as exc:
        _fail(exc)
    console.print(f"added user {name} ({role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def users_list(ctx: CliContext, as_json: bool) -> None:
    """Users and their roles."""
    found = _store(ctx).users()
    json_data = [asdict(user) for user in found]
    print_lines(found, as_json, json_data, _user_line, empty="no users", empty_to=console)


def _user_line(user: User) -> str:
    return f"{user.name}  {user.role}  (created {user.created_at})"


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def users_passwd(ctx: CliContext, name: str, password_stdin: bool) -> None:
    """Set a user's password; their browser sessions end."""
    from imagedex.access.roles import AccessError

    store = _store(ctx)
    try:
        if store.user(name) is None:
            raise AccessError(f"no user named {name!r}")
        store.set_password(name, _read_password(password_stdin))
    except AccessError as exc:
        _fail(exc)
    console.print(f"password of {name} changed; their sessions were ended")


@users.command("remove")
@click.argument("name")
@pass_ctx
def users_remove(ctx: CliContext, name: str) -> None:
    """Remove a user and end their sessions."""
    from imagedex.access.roles import AccessError

    try:
        _store(ctx).remove_user(name)
    except AccessError as exc:
        _fail(exc)
    console.print(f"removed user {name}")


COMMANDS: list[click.Command] = [keys, users]


def warn_about_access(settings: Settings) -> None:
    """What `imagedex up` says about access before it starts serving (it refuses nothing)."""
    from imagedex.access.policy import auth_required, is_loopback
    from imagedex.access.store import AccessStore

    if not settings.public_url and settings.host in ("0.0.0.0", "::"):
        console.print(
            f"[yellow]note:[/yellow] links in alerts and reports will point to "
            f"http://{settings.host}:{settings.port}; set public_url to the address users open"
        )
    if not auth_required(settings):
        if not is_loopback(settings.host):
            console.print(
                f"[yellow]warning:[/yellow] binding to {settings.host} with auth = off: anyone "
                "who can reach this address can upload, search and administer"
            )
        return
    store = AccessStore.open(settings)
    try:
        has_admin = store.has_admin()
    finally:
        store.close()
    if not has_admin:
        console.print(
            "[yellow]note:[/yellow] authentication is required and nobody can log in yet: "
            "create an administrator with `imagedex users add admin --role admin` "
            "(or a key with `imagedex keys create --name ops --role admin`)"
        )
