"""The setting catalogue: every privacy-related setting an organisation can govern.

The built-in settings follow the purposes and data categories of the privacy statement the
product implements (providing the product, improving it, personalisation, advertising,
combining data, sharing, cookies, social visibility). Products may declare their own
settings with the same schema. Plain Python: no I/O, no imports from our other packages.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Value = bool | int | str | tuple[str, ...]

#: Limits on a declared sample: the canonical JSON of its document, its description, and how
#: deep the document nests (a bound on the work of checking and showing it).
SAMPLE_MAX_BYTES = 8192
SAMPLE_DESCRIPTION_MAX = 1000
SAMPLE_MAX_DEPTH = 16


class SettingType(StrEnum):
    BOOL = "bool"
    ENUM = "enum"
    INT = "int"
    STRING_LIST = "string_list"


class Purpose(StrEnum):
    PROVIDE = "provide_the_product"
    IMPROVE = "improve_the_product"
    PERSONALISE = "personalisation"
    ADVERTISING = "advertising"
    COMBINE = "combining_data"
    SHARE = "sharing_with_third_parties"
    COOKIES = "cookies"
    SOCIAL = "social_features"


class CatalogueError(ValueError):
    """A value or a declaration does not fit the catalogue; ``field`` names where."""

    def __init__(self, message: str, field: str = "value") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Sample:
    """What a product sends at one value of a setting, so people can see before choosing it.

    ``value`` is the setting's value as text (``"optional"``; ``"true"``/``"false"`` for a
    bool); ``document`` is the canonical JSON text of the example (kept as text so the
    setting stays hashable and its version hash stable).
    """

    value: str
    document: str
    description: str

    def parsed(self) -> Any:
        return json.loads(self.document)


def sample_key(value: Value) -> str:
    """The key a sample of ``value`` is declared under: a bool as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_document(document: Any, depth: int, where: str) -> None:
    """Refuse what PostgreSQL's jsonb cannot hold (NUL, lone surrogates, NaN) or nests too deep."""
    if isinstance(document, dict | list) and depth > SAMPLE_MAX_DEPTH:
        raise CatalogueError(f"a sample nests deeper than {SAMPLE_MAX_DEPTH} levels", field=where)
    if isinstance(document, float) and not math.isfinite(document):
        raise CatalogueError("a sample holds a number JSON cannot represent", field=where)
    texts: list[Any] = []
    if isinstance(document, str):
        texts = [document]
    elif isinstance(document, dict):
        texts = list(document)
        for item in document.values():
            _check_document(item, depth + 1, where)
    elif isinstance(document, list):
        for item in document:
            _check_document(item, depth + 1, where)
    for text in texts:
        if not isinstance(text, str) or any(
            c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text
        ):
            raise CatalogueError(
                "a sample holds a NUL character or a lone surrogate, which JSON storage refuses",
                field=where,
            )


def make_sample(
    setting_key: str, choices: tuple[str, ...], value: str, document: Any, description: object
) -> Sample:
    """A checked sample; CatalogueError naming ``samples.<value>.<field>`` when it does not fit.

    ``choices`` are the values the setting allows as text: a sample for any other value
    would describe something the product can never be set to.
    """
    where = f"samples.{value}"
    if value not in choices:
        raise CatalogueError(
            f"{setting_key} has no value {value!r} to show a sample of"
            + (f"; it takes {', '.join(choices)}" if choices else ""),
            field=where,
        )
    if not isinstance(description, str) or not description.strip():
        raise CatalogueError(
            "a sample needs a plain-language description", field=f"{where}.description"
        )
    if len(description) > SAMPLE_DESCRIPTION_MAX:
        raise CatalogueError(
            f"a sample's description is at most {SAMPLE_DESCRIPTION_MAX} characters",
            field=f"{where}.description",
        )
    if not isinstance(document, dict):
        raise CatalogueError("a sample's document is a JSON object", field=f"{where}.document")
    _check_document(document, 1, f"{where}.document")
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > SAMPLE_MAX_BYTES:
        raise CatalogueError(
            f"a sample's document is at most {SAMPLE_MAX_BYTES} bytes of JSON",
            field=f"{where}.document",
        )
    return Sample(value, text, description)


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    type: SettingType
    default: Value
    title: str
    #: Plain-language text for members: what the setting does.
    description: str
    purpose: Purpose
    data_categories: frozenset[str]
    #: What stops working when it is off (or at its lowest level); empty when nothing does.
    off_effect: str = ""
    allowed: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    member_choosable: bool = True
    #: The product cannot work with it off; switching it off needs an explicit confirmation.
    required: bool = False
    #: It rests on each member's own consent (advertising, optional sharing, cookies that
    #: are not needed; GDPR Art. 4(11), 7(3), ePrivacy Art. 5(3)): an organisation may lock
    #: it off, never on, for consent that cannot be withdrawn is none. Off by default.
    consent: bool = False
    #: The product that declared it; None for built-in settings.
    product: str | None = None
    #: What the product sends at each value (enum and bool settings only), in value order.
    samples: tuple[Sample, ...] = ()

    def rule_problem(self, value: Value) -> str | None:
        """Why an organisation's rule, locked or not, may not give this setting ``value``;
        None when it may."""
        if self.consent and value is True:
            return (
                f"{self.title} rests on each member's own consent: a rule may switch it off "
                "or lock it off, never on (not even as a default a member may change: a box "
                "ticked in advance is no consent)"
            )
        return None

    def choices(self) -> tuple[str, ...]:
        """The values a sample may be declared for, as text; none for ints and lists."""
        if self.type is SettingType.BOOL:
            return ("false", "true")
        if self.type is SettingType.ENUM:
            return self.allowed
        return ()

    def sample_for(self, value: Value) -> Sample | None:
        key = sample_key(value)
        return next((s for s in self.samples if s.value == key), None)

    def validate(self, value: Any) -> Value:
        """``value`` in canonical form; CatalogueError when it does not fit."""
        if self.type is SettingType.BOOL:
            if not isinstance(value, bool):
                raise CatalogueError(f"{self.key} takes true or false")
            return value
        if self.type is SettingType.ENUM:
            if not isinstance(value, str) or value not in self.allowed:
                raise CatalogueError(f"{self.key} takes one of {', '.join(self.allowed)}")
            return value
        if self.type is SettingType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise CatalogueError(f"{self.key} takes a whole number")
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise CatalogueError(
                    f"{self.key} takes a number from {self.minimum} to {self.maximum}"
                )
            return value
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise CatalogueError(f"{self.key} takes a list of strings")
        if self.allowed and any(v not in self.allowed for v in value):
            raise CatalogueError(f"{self.key} takes items from {', '.join(self.allowed)}")
        return tuple(dict.fromkeys(value))

    def is_off(self, value: Value) -> bool:
        """Whether ``value`` switches the setting off (for "what stops working")."""
        if self.type is SettingType.BOOL:
            return value is False
        if self.type is SettingType.ENUM:
            return value == (self.allowed[0] if self.allowed else value)
        if self.type is SettingType.INT:
            return value == self.minimum
        return value == ()

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.type.value,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "title": self.title,
            "description": self.description,
            "purpose": self.purpose.value,
            "data_categories": sorted(self.data_categories),
            "off_effect": self.off_effect,
            "allowed": list(self.allowed),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "member_choosable": self.member_choosable,
            "required": self.required,
            "consent": self.consent,
            "product": self.product,
            "samples": {
                s.value: {"document": s.parsed(), "description": s.description}
                for s in self.samples
            },
        }


@dataclass(frozen=True)
class Catalogue:
    settings: Mapping[str, Setting]
    #: A content hash: changes whenever any setting's definition changes.
    version: str = field(default="")

    @classmethod
    def of(cls, settings: Iterable[Setting]) -> Catalogue:
        ordered = {s.key: s for s in settings}
        digest = hashlib.sha256(
            json.dumps([s.describe() for s in ordered.values()], sort_keys=True).encode()
        ).hexdigest()[:16]
        return cls(ordered, digest)

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]

    def __contains__(self, key: object) -> bool:
        return key in self.settings

    def __iter__(self) -> Any:
        return iter(self.settings.values())

    def validate(self, key: str, value: Any) -> Value:
        setting = self.settings.get(key)
        if setting is None:
            raise CatalogueError(f"there is no setting {key!r}", field="setting")
        return setting.validate(value)

    def validate_rule(self, key: str, value: Any) -> Value:
        """``validate``, and what an organisation's rule may not set (``rule_problem``)."""
        checked = self.validate(key, value)
        problem = self.settings[key].rule_problem(checked)
        if problem is not None:
            raise CatalogueError(problem, field="value")
        return checked

    def with_declared(self, declared: Iterable[Setting]) -> Catalogue:
        """The catalogue extended with products' settings; CatalogueError on a clash of
        key (with a built-in or another product's setting) or of type."""
        merged = dict(self.settings)
        for setting in declared:
            existing = merged.get(setting.key)
            if existing is not None and (
                existing.product != setting.product or existing.type != setting.type
            ):
                owner = existing.product or "the built-in catalogue"
                raise CatalogueError(
                    f"{setting.key} is already declared by {owner} as {existing.type.value}",
                    field="key",
                )
            setting.validate(setting.default)
            merged[setting.key] = setting
        return Catalogue.of(merged.values())


def _bool(
    key: str,
    title: str,
    description: str,
    purpose: Purpose,
    categories: set[str],
    *,
    default: bool,
    off_effect: str = "",
    choosable: bool = True,
    required: bool = False,
    consent: bool = False,
) -> Setting:  # pragma: no mutate block
    # Not mutated: it runs only while this module is imported, before mutmut can switch a
    # mutant on; test_the_builtin_catalogue_is_the_one_the_service_promises checks every
    # setting it builds.
    return Setting(
        key,
        SettingType.BOOL,
        default,
        title,
        description,
        purpose,
        frozenset(categories),
        off_effect=off_effect,
        member_choosable=choosable,
        required=required,
        consent=consent,
    )


DIAGNOSTICS_SAMPLES = tuple(
    make_sample("diagnostics.level", ("off", "required", "optional"), value, document, text)
    for value, document, text in (
        (
            "off",
            {},
            "Nothing is sent about the product's health. Crashes are not reported.",
        ),
        (
            "required",
            {
                "event": "app.crash",
                "product_version": "4.2.1",
                "os": "Windows 11 23H2",
                "device_id": "3f1c…e9 (random, not linked to your name)",
                "error_code": "0xC0000005",
                "module": "renderer.dll",
                "occurred_at": "2026-03-01T09:14:00Z",
            },
            "Only what keeps the product secure and working: the product and system version, a "
            "random device id, and which part failed when it crashes. No file contents or names.",
        ),
        (
            "optional",
            {
                "event": "feature.used",
                "product_version": "4.2.1",
                "os": "Windows 11 23H2",
                "device_id": "3f1c…e9 (random, not linked to your name)",
                "feature": "export_to_pdf",
                "duration_ms": 840,
                "settings_changed": ["theme"],
                "occurred_at": "2026-03-01T09:20:00Z",
            },
            "Everything sent at the required level, plus which features you use and how long "
            "they take, to improve the product. Still no file contents, names or what you type.",
        ),
    )
)

COOKIE_NOTE = "Necessary cookies are always on: sign-in and security depend on them."

BUILTIN = Catalogue.of(
    [
        Setting(
            "diagnostics.level",
            SettingType.ENUM,
            "required",
            "Diagnostic data",
            "How much technical data about the product's health your devices send: off, only what is "
            "required to keep the product secure and working, or optional data that helps improve it.",
            Purpose.IMPROVE,
            frozenset({"diagnostic"}),
            allowed=("off", "required", "optional"),
            off_effect="Crash reports and automatic problem fixes stop; support sees less when you report "
            "a problem.",
            samples=DIAGNOSTICS_SAMPLES,
        ),
        _bool(
            "improvement.use_data",
            "Use of data to improve products",
            "Your interaction data may be used, de-identified, to improve the products.",
            Purpose.IMPROVE,
            {"interaction", "diagnostic"},
            default=False,
        ),
        _bool(
            "personalisation.recommendations",
            "Personalisation and recommendations",
            "The products tailor what they show you, such as suggestions and recommended items.",
            Purpose.PERSONALISE,
            {"interaction"},
            default=True,
            off_effect="Recommendations and suggestions based on your activity stop.",
        ),
        _bool(
            "advertising.personalised_ads",
            "Personalised ads",
            "Ads you see are chosen using your activity.",
            Purpose.ADVERTISING,
            {"interaction"},
            default=False,
            consent=True,
            off_effect="You still may see ads, but they are not chosen using your activity.",
        ),
        _bool(
            "advertising.promotional_communications",
            "Promotional communications",
            "You receive promotional emails and messages about products.",
            Purpose.ADVERTISING,
            {"contact"},
            default=False,
            consent=True,
        ),
        _bool(
            "advertising.relevant_offers",
            "Relevant offers",
            "You are shown offers picked for you.",
            Purpose.ADVERTISING,
            {"interaction"},
            default=False,
            consent=True,
        ),
        _bool(
            "data.combine_across_products",
            "Combining data across products",
            "Data from one product is combined with data from the others, for example to continue a task "
            "in another product.",
            Purpose.COMBINE,
            {"interaction", "content"},
            default=True,
            off_effect="Features that carry your work between products (shared history, cross-product "
            "search) stop.",
        ),
        _bool(
            "sharing.third_parties_optional",
            "Sharing with third parties for optional purposes",
            "Data is shared with partners for purposes that are not needed to provide the product.",
            Purpose.SHARE,
            {"interaction", "contact"},
            default=False,
            consent=True,
        ),
        _bool(
            "sharing.obtain_from_third_parties",
            "Data about you from third parties",
            "The products obtain data about you from other companies to add to what they know.",
            Purpose.SHARE,
            {"contact", "demographic"},
            default=False,
        ),
        _bool(
            "cookies.necessary",
            "Necessary cookies",
            COOKIE_NOTE,
            Purpose.PROVIDE,
            {"device"},
            default=True,
            choosable=False,
            required=True,
            off_effect="Sign-in and security stop working: the products cannot be used.",
        ),
        _bool(
            "cookies.preferences",
            "Preference cookies",
            "Cookies remember your choices such as language.",
            Purpose.COOKIES,
            {"device"},
            default=True,
            off_effect="Your preferences are forgotten between visits.",
        ),
        _bool(
            "cookies.analytics",
            "Analytics cookies",
            "Cookies measure how the products are used.",
            Purpose.COOKIES,
            {"device", "interaction"},
            default=False,
            consent=True,
        ),
        _bool(
            "cookies.advertising",
            "Advertising cookies",
            "Cookies used to choose and measure ads.",
            Purpose.COOKIES,
            {"device", "interaction"},
            default=False,
            consent=True,
        ),
        _bool(
            "cookies.third_party",
            "Third-party cookies",
            "Cookies set by other companies' services.",
            Purpose.COOKIES,
            {"device", "interaction"},
            default=False,
            consent=True,
        ),
        _bool(
            "cookies.web_beacons",
            "Web beacons",
            "Tiny images in pages and emails that tell when they were opened.",
            Purpose.COOKIES,
            {"device", "interaction"},
            default=False,
            consent=True,
        ),
        Setting(
            "social.activity_visibility",
            SettingType.ENUM,
            "network",
            "Who sees your activity",
            "Social features show some of your activity (such as what you worked on) to others: everyone "
            "in the organisation, only your network, or nobody.",
            Purpose.SOCIAL,
            frozenset({"interaction"}),
            allowed=("nobody", "network", "organisation"),
            off_effect="Colleagues stop seeing your activity in feeds and profile cards.",
        ),
    ]
)
