"""``go1o4 --help`` reads as a user's help (commands by pipeline stage) and every argument of every
subcommand, nested ones included, has a help text (issue 18.3)."""
import argparse
import importlib

import pytest

from go1o4.cli import COMMANDS, STAGES, extra_args, format_help, main


def undocumented(parser, path):
    """(command path, argument) of every argument without help, walking sub-commands."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    out.append((path + [name], "(the sub-command itself)"))
                out += undocumented(sub, path + [name])
        elif not action.help or action.help == argparse.SUPPRESS:
            out.append((path, "/".join(action.option_strings) or action.dest))
    return out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_has_help(name):
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog="go1o4 " + name)
    module.add_arguments(parser)
    assert undocumented(parser, [name]) == []
    assert parser.format_help()


def test_top_level_help_is_grouped_by_stage(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text == format_help()
    positions = [text.index(title + ":") for title, _ in STAGES]
    assert positions == sorted(positions)
    for name, (_, help_text) in COMMANDS.items():
        assert "  %-17s %s" % (name, help_text) in text  # every command listed once, with its help
    assert "make demo" in text and "go1o4 session --robot-ip 127.0.0.1" in text
    assert "main job" not in COMMANDS["demo"][1]  # `make demo` is the main job


def test_test_budget_arguments_come_from_the_environment(monkeypatch):
    assert extra_args("pretrain") == []
    monkeypatch.setenv("GO1O4_ARGS_T265_ECHO", "--duration 0.1 --robot 'a b'")
    assert extra_args("t265-echo") == ["--duration", "0.1", "--robot", "a b"]
