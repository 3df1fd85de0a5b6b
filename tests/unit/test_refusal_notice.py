"""The cap's refusals are said as a warning at most once a minute, with their count."""

from __future__ import annotations

import logging

from common.services import assignment


def test_refusals_warn_once_per_minute_with_what_accumulated(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(assignment.time, "monotonic", lambda: clock[0])
    notice = assignment._RefusalNotice()
    caplog.set_level(logging.WARNING, logger=assignment.__name__)

    notice.refused(2)  # the first refusal is said at once
    for _ in range(50):  # a saturated minute: many more, none said
        clock[0] += 1
        notice.refused(3)
    clock[0] += notice.EVERY
    notice.refused(1)  # a minute after the first notice: everything since, in one line

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("cap refused 2 pick(s)")
    assert warnings[1].startswith("cap refused 151 pick(s)")
