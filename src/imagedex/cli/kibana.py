"""`imagedex kibana`: saved objects for Kibana / OpenSearch Dashboards users."""

from __future__ import annotations

from pathlib import Path

import click

from imagedex.cli.common import CliContext, console, pass_ctx, print_outcome


@click.group("kibana")
def kibana() -> None:
    """Dashboards for Kibana or OpenSearch Dashboards over the imagedex index."""


@kibana.command("export")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the NDJSON here (default: standard output).",
)
@click.option(
    "--flavor",
    type=click.Choice(["kibana", "opensearch-dashboards"]),
    help="Target tool [default: kibana for an Elasticsearch index, else opensearch-dashboards].",
)
@click.option("--index", "alias", help="Index or alias name [default: the one in the index URL].")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (needs --out).")
@pass_ctx
def export(
    ctx: CliContext, out_file: Path | None, flavor: str | None, alias: str | None, as_json: bool
) -> None:
    """Write saved objects (index pattern, visualizations, dashboard) as NDJSON.

    Import the file in Stack Management > Saved objects (Kibana) or Dashboards Management >
    Saved objects (OpenSearch Dashboards). Ids are stable: importing again replaces the objects.
    """
    from imagedex.index.kibana import default_flavor, export_ndjson, index_alias, saved_objects

    index_url = ctx.settings.index
    alias = alias or index_alias(index_url)
    flavor = flavor or default_flavor(index_url)
    if "+" not in index_url.split("://")[0]:
        console.print(
            f"[yellow]note:[/] the index is {index_url!r}; these dashboards read the "
            f"OpenSearch/Elasticsearch index {alias!r} (set IMAGEDEX_INDEX to use one)"
        )
    try:
        text = export_ndjson(alias, flavor)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--index") from exc
    if out_file is None:
        if as_json:
            raise click.UsageError("--json prints a summary, so the NDJSON needs --out FILE")
        click.echo(text, nl=False)
        return
    out_file.write_text(text, encoding="utf-8")
    objects = saved_objects(alias, flavor)
    summary = {
        "file": str(out_file),
        "flavor": flavor,
        "index": alias,
        "objects": [
            {"type": o["type"], "id": o["id"], "title": o["attributes"]["title"]} for o in objects
        ],
    }
    message = f"wrote {len(objects)} saved objects for {flavor} (index {alias}) to {out_file}"
    print_outcome(summary, as_json, message)


COMMANDS: list[click.Command] = [kibana]
