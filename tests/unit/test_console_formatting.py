"""The console's pure helpers and the supervision settings, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from common.settings import Settings
from console.formatting import frame_link, left, plain


def test_plain_escapes_everything_markdown_or_streamlit_gives_a_meaning():
    assert plain("**b** <i>x</i> :red[y] $z$ [l](u)") == (
        "\\*\\*b\\*\\* \\<i\\>x\\</i\\> \\:red\\[y\\] \\$z\\$ \\[l\\]\\(u\\)")
    assert plain("camera 12") == "camera 12"


def test_a_frame_reference_is_a_link_only_with_a_template():
    assert frame_link("f_1", "") == "f\\_1"
    assert frame_link("a b)", "https://vms.example/frames/{frame_reference}") == (
        "[a b\\)](https://vms.example/frames/a%20b%29)")


def test_time_left_before_expiry():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert left(now + timedelta(minutes=4, seconds=10), now) == "4 min 10 s"
    assert left(now - timedelta(seconds=1), now) == "expired"


def test_response_targets_parse_and_nonsense_is_refused():
    assert Settings(RESPONSE_TARGET_MINUTES="1=9,2=8,3=7,4=6,5=0.5").response_targets == {
        5: 0.5, 4: 6.0, 3: 7.0, 2: 8.0, 1: 9.0}
    for bad in ("5=1", "5=1,4=3,3=20,2=60,1=0", "5=x,4=1,3=1,2=1,1=1", "6=1"):
        with pytest.raises(ValidationError):
            Settings(RESPONSE_TARGET_MINUTES=bad)


def test_a_frame_template_must_be_a_url_naming_the_reference():
    assert Settings(FRAME_URL_TEMPLATE="").FRAME_URL_TEMPLATE == ""
    for bad in ("https://vms.example/frames/", "ftp://x/{frame_reference}"):
        with pytest.raises(ValidationError):
            Settings(FRAME_URL_TEMPLATE=bad)
