"""Validators for the identifiers of the music industry.

Each ``*_normalize`` function takes what a person typed (spaces, hyphens, dots and lower
case allowed), returns the compact canonical form that is stored, and raises Django's
``ValidationError`` with a message a person can act on. The ``validate_*`` functions are
the same checks in the shape Django model fields want.

* ISRC (ISO 3901): ``CC XXX YY NNNNN``; country prefix checked against ISO 3166-1 and the
  IFPI's extra prefixes (python-stdnum). No check digit exists.
* ISNI (ISO 27729): 16 characters, ISO 7064 MOD 11-2 check character (python-stdnum).
* ISWC (ISO 15707): ``T-DDD.DDD.DDD-C``; C = (10 - (1 + sum(i * d_i)) mod 10) mod 10.
* IPI name number (CISAC): 11 digits; the last two are (101 - sum(d_i * (10 - i))
  mod 101) mod 100 over the first nine digits, i = 0..8.
* Payout currency: an ISO 4217 alphabetic code.

Identifiers are ASCII: a look-alike digit or letter from another script is refused, not
stored. Names and titles (``validate_single_line``) and free text (``validate_text``)
hold no control characters. ``field_problems`` runs a model's own field validation on
some values: the one check shared by the services (pages, API, admin) and the import.
"""

import re
import unicodedata

from django.core.exceptions import ValidationError
from stdnum import isni as stdnum_isni
from stdnum import isrc as stdnum_isrc
from stdnum.exceptions import (
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
)
from stdnum.exceptions import (
    ValidationError as StdnumError,
)

_SEPARATORS = re.compile(r"[\s\-.]")

# ISO 4217 active alphabetic codes of currencies a payout can be made in.
_CURRENCY_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR
    ZMW ZWL"""
CURRENCIES = frozenset(_CURRENCY_CODES.split())


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", str(value)).upper()


def _control_characters(value: str, allowed: str = "") -> list[str]:
    """The control characters (and lone surrogates) in ``value``, as ``U+XXXX``."""
    found = []
    for character in str(value):
        if character in allowed:
            continue
        if unicodedata.category(character) in {"Cc", "Cs"}:
            code = f"U+{ord(character):04X}"
            if code not in found:
                found.append(code)
    return found


def validate_single_line(value: str) -> None:
    """A name or title: printable text on one line."""
    found = _control_characters(value)
    if found:
        raise ValidationError(
            f"must not contain control characters (found {', '.join(found[:5])}).",
            code="control_characters",
        )


def validate_text(value: str) -> None:
    """Free text: lines and tabs allowed, other control characters not."""
    found = _control_characters(value, allowed="\n\r\t")
    if found:
        raise ValidationError(
            f"must not contain control characters (found {', '.join(found[:5])}).",
            code="control_characters",
        )


def field_problems(model, values: dict) -> dict[str, str]:
    """What ``model``'s field validation (lengths, choices, formats, the validators above)
    says about ``values``, ``{field: message}``; fields not given are not judged.

    This is the validation ``full_clean`` runs in every service, so a value an import
    file brings is accepted exactly when the pages and the API would accept it.
    """
    instance = model(**values)
    exclude = [f.name for f in model._meta.concrete_fields if f.name not in values]
    try:
        instance.clean_fields(exclude=exclude)
    except ValidationError as exc:
        return {name: " ".join(messages) for name, messages in exc.message_dict.items()}
    return {}


def isrc_normalize(value: str) -> str:
    compact = _compact(value)
    if not compact.isascii():
        raise ValidationError(
            f"ISRC {value!r} must be written in ASCII letters and digits.", code="isrc_format"
        )
    if len(compact) != 12:
        raise ValidationError(
            f"ISRC {value!r} must have 12 characters (CC-XXX-YY-NNNNN), not {len(compact)}.",
            code="isrc_length",
        )
    try:
        return stdnum_isrc.validate(compact)
    except InvalidComponent:
        raise ValidationError(
            f"ISRC {value!r} has an unknown country prefix {compact[:2]!r}.", code="isrc_country"
        ) from None
    except StdnumError:
        raise ValidationError(
            f"ISRC {value!r} is not in the format CC-XXX-YY-NNNNN "
            "(2-letter country, 3 letters/digits, 2-digit year, 5 digits).",
            code="isrc_format",
        ) from None


def isni_normalize(value: str) -> str:
    compact = _compact(value)
    if not compact.isascii():
        raise ValidationError(
            f"ISNI {value!r} must be 15 digits followed by a digit or X.", code="isni_format"
        )
    try:
        return stdnum_isni.validate(compact)
    except InvalidLength:
        raise ValidationError(
            f"ISNI {value!r} must have 16 characters, not {len(compact)}.", code="isni_length"
        ) from None
    except InvalidFormat:
        raise ValidationError(
            f"ISNI {value!r} must be 15 digits followed by a digit or X.", code="isni_format"
        ) from None
    except StdnumError:
        raise ValidationError(
            f"ISNI {value!r} has a wrong check character.", code="isni_checksum"
        ) from None


def iswc_check_digit(nine_digits: str) -> int:
    """The ISWC check digit of the nine digits after the ``T``."""
    assert len(nine_digits) == 9 and nine_digits.isdigit(), nine_digits
    total = 1 + sum(position * int(digit) for position, digit in enumerate(nine_digits, start=1))
    return (10 - total % 10) % 10


def iswc_normalize(value: str) -> str:
    compact = _compact(value)
    if not re.fullmatch(r"T[0-9]{10}", compact):
        raise ValidationError(
            f"ISWC {value!r} must be 'T' followed by 10 digits (T-DDD.DDD.DDD-C).",
            code="iswc_format",
        )
    if iswc_check_digit(compact[1:10]) != int(compact[10]):
        raise ValidationError(f"ISWC {value!r} has a wrong check digit.", code="iswc_checksum")
    return compact


def ipi_check_digits(nine_digits: str) -> str:
    """The two IPI name number check digits of its first nine digits."""
    assert len(nine_digits) == 9 and nine_digits.isdigit(), nine_digits
    total = sum(int(digit) * (10 - index) for index, digit in enumerate(nine_digits)) % 101
    return f"{(101 - total) % 100 if total else 0:02d}"


def ipi_normalize(value: str) -> str:
    compact = _compact(value)
    if not re.fullmatch(r"[0-9]{1,11}", compact):
        raise ValidationError(
            f"IPI name number {value!r} must be up to 11 digits.", code="ipi_format"
        )
    compact = compact.rjust(11, "0")  # IPI name numbers are often written without leading zeros
    if ipi_check_digits(compact[:9]) != compact[9:]:
        raise ValidationError(
            f"IPI name number {value!r} has wrong check digits.", code="ipi_checksum"
        )
    return compact


def currency_normalize(value: str) -> str:
    code = str(value).strip().upper()
    if code not in CURRENCIES:
        raise ValidationError(
            f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR).", code="currency"
        )
    return code


def _require_canonical(value: str, normalize) -> None:
    canonical = normalize(value)
    if canonical != value:
        raise ValidationError(
            f"{value!r} must be stored in its compact form {canonical!r}.", code="canonical"
        )


def validate_isrc(value: str) -> None:
    _require_canonical(value, isrc_normalize)


def validate_isni(value: str) -> None:
    _require_canonical(value, isni_normalize)


def validate_iswc(value: str) -> None:
    _require_canonical(value, iswc_normalize)


def validate_ipi(value: str) -> None:
    _require_canonical(value, ipi_normalize)


def validate_currency(value: str) -> None:
    _require_canonical(value, currency_normalize)
