"""processing.reasons: the one list of reject reasons, and the README's table of them."""

from __future__ import annotations

import re
from pathlib import Path

from processing.reasons import CODES, VALIDATION_CODES, Reason

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_explains_every_reason_and_no_other() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| reason | meaning |") :].split("\n\n", 1)[0]
    documented = {
        code
        for row in table.splitlines()[2:]
        for code in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }
    assert documented == CODES


def test_validation_codes_are_the_lower_case_names() -> None:
    assert VALIDATION_CODES[int(Reason.OUT_OF_RANGE)] == "out_of_range"
    assert VALIDATION_CODES[int(Reason.TS_BEFORE_INSTALL)] == "ts_before_install"
    assert Reason.OK.code not in CODES
