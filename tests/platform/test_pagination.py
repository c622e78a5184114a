"""The cursor codec and the page shape every listing shares."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.pagination import (
    INVALID_CURSOR,
    CursorCodec,
    Page,
    invalid_cursor,
    split_page,
)
from tests.conftest import UserFactory

PAIRS = CursorCodec("pairs", 2)


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


@given(st.text(), st.text())
def test_round_trip_of_any_strings(first: str, second: str) -> None:
    cursor = PAIRS.encode(first, second)
    # URL-safe without quoting: it goes into a query string as it is.
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert PAIRS.decode(cursor) == (first, second)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "garbage",
        "not-base64!",
        "e30",  # {}
        _b64(["pairs", "a"]),  # too few parts
        _b64(["pairs", "a", "b", "c"]),  # too many
        _b64(["pairs", "a", 1]),  # not strings
        _b64(["other", "a", "b"]),  # another listing's cursor
        _b64({"pairs": ["a", "b"]}),
        PAIRS.encode("NIFTY 50", "NSE")[:-3],  # truncated
        PAIRS.encode("NIFTY 50", "NSE")[1:],  # edited
        base64.urlsafe_b64encode(b"\xff\xfe[").decode(),  # not UTF-8
    ],
)
def test_anything_not_issued_is_the_one_invalid_cursor_error(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        PAIRS.decode(cursor)
    assert raised.value.detail == INVALID_CURSOR
    assert raised.value.extra == {"field": "cursor"}
    assert raised.value.status == 422


def test_decode_as_turns_unparsable_parts_into_the_same_error() -> None:
    def position(created: str, row_id: str) -> tuple[dt.datetime, uuid.UUID]:
        return dt.datetime.fromisoformat(created), uuid.UUID(row_id)

    when, row_id = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), uuid.uuid4()
    assert PAIRS.decode_as(PAIRS.encode(when.isoformat(), str(row_id)), position) == (
        when,
        row_id,
    )
    with pytest.raises(InvalidInput, match="cursor"):
        PAIRS.decode_as(PAIRS.encode("yesterday", str(row_id)), position)
    with pytest.raises(InvalidInput, match="cursor"):
        PAIRS.decode_as(PAIRS.encode(when.isoformat(), "not-a-uuid"), position)


def test_encode_refuses_the_wrong_number_of_parts() -> None:
    with pytest.raises(ValueError, match="2 parts"):
        PAIRS.encode("only one")


def test_split_page() -> None:
    assert split_page([1, 2, 3], 3, str) == ([1, 2, 3], None)
    assert split_page([1, 2, 3, 4], 3, str) == ([1, 2, 3], "3")
    assert split_page([], 3, str) == ([], None)


def test_page_subclass_names_its_schema() -> None:
    class Item(BaseModel):
        name: str

    class ItemPage(Page[Item]):
        pass

    page = ItemPage(items=[Item(name="a")], next_cursor=None)
    assert page.model_dump() == {"items": [{"name": "a"}], "next_cursor": None}
    assert ItemPage.model_json_schema()["title"] == "ItemPage"
    assert str(invalid_cursor()) == INVALID_CURSOR


@pytest.mark.parametrize(
    "path", ["/api/v1/admin/users", "/api/v1/admin/security-events", "/api/v1/instruments"]
)
async def test_every_listing_answers_a_bad_cursor_with_one_problem(
    client: httpx.AsyncClient, make_user: UserFactory, path: str
) -> None:
    admin = await make_user("admin")
    foreign = CursorCodec("someone-else", 2).encode("a", "b")
    for cursor in ("%%%", foreign):
        response = await client.get(path, headers=admin.headers, params={"cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["detail"] == INVALID_CURSOR
        assert body["field"] == "cursor"
