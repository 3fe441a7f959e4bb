"""flask vocab: the controlled vocabularies in force (processes/vocabularies/, deployed with the complaint
process) and the complaint values that are no code of them: list them, and map one to a code."""
import click
from flask import current_app

from .. import vocab_store
from ..extensions import db
from .group import AUDITED_BY, Group

group = Group("vocab", help="Controlled vocabularies: their codes, and free-text values still to map.")


def _in_force() -> dict:
    vocabularies = vocab_store.in_force(db.session, current_app.config["COMPLAINT_PROCESS"])
    if not vocabularies:
        raise click.ClickException(f"no vocabulary is deployed with {current_app.config['COMPLAINT_PROCESS']}: "
                                   f"run `flask processes check`, then `flask processes deploy`")
    return vocabularies


@group.command("list")
@click.argument("name", required=False)
def list_cmd(name):
    """The codes of every vocabulary in force (or of NAME), with their labels; retired ones marked."""
    vocabularies = _in_force()
    if name is not None and name not in vocabularies:
        raise click.ClickException(f"no vocabulary {name!r} (there: {', '.join(sorted(vocabularies))})")
    for known in (vocabularies[n] for n in ([name] if name else sorted(vocabularies))):
        click.echo(f"{known.name}: {known.title} / {known.title_en}")
        for code, term in known.terms.items():
            state = f"retired {term.retired}" if term.retired else ("group" if known.is_group(code) else "offered")
            click.echo(f"  {code:<28} {known.label(code, 'zh')} / {known.label(code, 'en')}  [{state}]")


@group.command("unmapped")
def unmapped():
    """The values of the coded complaint columns that are no code: free text from before coded data,
    or a code deleted from a vocabulary file instead of retired. Map each with `flask vocab map`."""
    rows = vocab_store.unmapped(db.session, _in_force())
    for row in rows:
        hint = f"  (suggested: flask vocab map {row.value!r} {row.suggestion}" + \
            (f" --column {row.column})" if row.column != "category" else ")") if row.suggestion else ""
        click.echo(f"{row.column}: {row.value!r}: {row.complaints} complaint(s), e.g. "
                   f"{', '.join(row.examples)}{hint}")
    click.echo(f"{len(rows)} value(s) to map" if rows else "every coded value is a code of its vocabulary")


@group.command("map")
@click.argument("old")
@click.argument("code")
@click.option("--column", default="category", show_default=True,
              help="The coded column: category, product_line, cause_code or responsible_party.")
@click.option("--dry-run", is_flag=True, help="Say how many complaints would be given the code; change nothing.")
@AUDITED_BY
def map_cmd(old, code, column, dry_run, actor):
    """Give every complaint whose COLUMN holds OLD the code CODE instead (audited; a free-text category
    stays readable in category_legacy)."""
    try:
        changed = vocab_store.map_value(db.session, _in_force(), column, old, code, actor, dry_run=dry_run)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo(f"{column}: {old!r} -> {code}: {changed} complaint(s) would be given the code "
                   f"(dry run: nothing changed)")
    else:
        click.echo(f"{column}: {old!r} -> {code}: {changed} complaint(s)")
