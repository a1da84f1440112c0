"""The ``tripcomms`` console script: the same commands as ``flask --app tripcomms``."""

from __future__ import annotations

from flask.cli import FlaskGroup

from tripcomms import create_app
from tripcomms.demo import demo_command


def main() -> None:
    group = FlaskGroup(create_app=create_app, help="tripcomms: school-trip communications.")
    group.add_command(demo_command)
    group.main(prog_name="tripcomms")
