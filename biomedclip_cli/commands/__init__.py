"""The Typer commands, one module per command (named after it; `eval` lives in evaluate.py): parse options, call below, render.

May import every package below (jobs, checks, launch, runs, models, data, hub, envinfo) and the
leaves; a command module imports its domain modules inside the command, so `bmclip --help` stays
light. Nothing imports commands/ but cli.py.
"""
