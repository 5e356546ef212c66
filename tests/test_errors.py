"""The error hierarchy keeps its promises: an error that says it names the
field carries it as `field`, for the raisers that know it."""

from __future__ import annotations

from typing import Any

import pytest

from firmware.emv.online import OnlineResponse
from firmware.errors import HostError, MessageFieldError, MessageFormatError


def test_message_format_error_carries_its_field() -> None:
    error = MessageFormatError("response code is not 2 characters", "39")
    assert (error.field, str(error)) == ("39", "response code is not 2 characters")
    assert isinstance(error, HostError)
    assert MessageFormatError("no one field to blame").field is None


def test_message_field_error_is_a_message_format_error_with_field_and_offset() -> None:
    error = MessageFieldError("non-numeric data", "4", 17)
    assert isinstance(error, MessageFormatError)
    assert (error.field, error.offset, str(error)) == ("4", 17, "non-numeric data (field 4, offset 17)")
    assert str(MessageFieldError("too long", "62")) == "too long (field 62)"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"response_code": "000"}, "response_code"),
        ({"response_code": "00", "issuer_authentication_data": bytes(7)}, "issuer_authentication_data"),
        ({"response_code": "00", "authorisation_code": "12345"}, "authorisation_code"),
        ({"response_code": "00", "approved_amount": -1}, "approved_amount"),
    ],
)
def test_an_online_response_that_cannot_be_names_the_field(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageFormatError) as caught:
        OnlineResponse(**arguments)
    assert caught.value.field == field
