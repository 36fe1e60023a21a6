"""Catalogue and input rules."""

from __future__ import annotations

import unicodedata

import pytest

from shop.domain import rules
from shop.domain.catalogue import CATALOGUE, find_item
from shop.domain.errors import UnknownItem, ValidationError


class TestCatalogue:
    def test_has_the_ten_items_of_the_spec_with_their_prices(self) -> None:
        prices = {name: item.price for name, item in CATALOGUE.items()}
        assert prices == {
            "t-shirt": 80,
            "cup": 20,
            "book": 50,
            "pen": 10,
            "powerbank": 200,
            "hoody": 300,
            "umbrella": 200,
            "socks": 10,
            "wallet": 50,
            "pink-hoody": 500,
        }

    @pytest.mark.parametrize("name", ["Cup", "CUP", "cup ", "car", ""])
    def test_find_item_is_exact_and_case_sensitive(self, name: str) -> None:
        with pytest.raises(UnknownItem):
            find_item(name)

    def test_find_item_returns_the_entry(self) -> None:
        assert find_item("pink-hoody").price == 500


class TestUsernames:
    def test_composed_and_decomposed_forms_are_one_name(self) -> None:
        decomposed = unicodedata.normalize("NFD", "José")
        assert rules.normalize_username(decomposed) == "José"

    @pytest.mark.parametrize("name", ["Дмитрий", "李小龙", "emoji🙂", "a" * 64])
    def test_accepts_unicode_within_the_limit(self, name: str) -> None:
        assert rules.normalize_username(name) == name

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("", "must not be empty"),
            ("a" * 65, "at most 64"),
            (" bob", "whitespace"),
            ("bob\n", "whitespace"),
            ("bo\x00b", "control"),
            ("bo\u200bb", "control"),
        ],
    )
    def test_refuses_names_that_break_a_rule(self, name: str, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            rules.normalize_username(name)

    def test_names_the_field_in_the_message(self) -> None:
        with pytest.raises(ValidationError, match="toUser"):
            rules.normalize_username("", field="toUser")


class TestPasswordsAndAmounts:
    def test_refuses_empty_and_overlong_passwords(self) -> None:
        with pytest.raises(ValidationError):
            rules.check_password("")
        with pytest.raises(ValidationError):
            rules.check_password("x" * (rules.MAX_PASSWORD_LENGTH + 1))
        assert rules.check_password("x" * rules.MAX_PASSWORD_LENGTH)

    @pytest.mark.parametrize("amount", [0, -1, rules.MAX_AMOUNT + 1])
    def test_refuses_amounts_out_of_range(self, amount: int) -> None:
        with pytest.raises(ValidationError):
            rules.check_amount(amount)

    @pytest.mark.parametrize("amount", [1, rules.MAX_AMOUNT])
    def test_accepts_amounts_at_the_edges(self, amount: int) -> None:
        assert rules.check_amount(amount) == amount
