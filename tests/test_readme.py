"""The README stays true: its first two commands, a row for every setting, the links to the API docs."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_readme_starts_with_the_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.DOTALL)

    venv = "python3 -m venv .venv && .venv/bin/pip install"
    assert blocks[0] == f"{venv} -e . && .venv/bin/tollgate serve --demo"
    assert blocks[1] == f"{venv} -e '.[test]' && .venv/bin/pytest"


def test_every_setting_is_documented() -> None:
    variables = [f"TOLLGATE_{name.upper()}" for name in Settings.model_fields]
    missing = [variable for variable in variables if variable not in README]

    assert not missing, f"document these settings in the README: {missing}"


def test_the_readme_links_the_api_conventions_and_the_changelog() -> None:
    assert "](docs/api-conventions.md)" in README
    assert "](CHANGELOG.md)" in README
