"""Every command and every option of `superlab` says what it does in --help."""

import typer
from typer.testing import CliRunner

from superlab.cli import app


def _walk(cmd, path: str):
    yield path, cmd
    # Duck-typed: typer may ship its own copy of click, so isinstance(click.Group) misses.
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help():
    root = typer.main.get_command(app)
    missing = []
    walked = list(_walk(root, "superlab"))
    assert len(walked) > 12  # run, data, train, eval, stages, version, config *, plan *
    for path, cmd in walked:
        if not (cmd.help or "").strip():
            missing.append(path)
        for p in cmd.params:
            if p.name != "help" and not (getattr(p, "help", None) or "").strip():
                missing.append(f"{path} {p.opts[0]}")
    assert missing == []


def test_help_runs_for_every_command():
    root = typer.main.get_command(app)
    runner = CliRunner()
    for path, _ in _walk(root, "superlab"):
        res = runner.invoke(app, [*path.split()[1:], "--help"])
        assert res.exit_code == 0, path
        assert "Usage:" in res.output
