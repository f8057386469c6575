import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from catalog.validators import (
    currency_normalize,
    ipi_check_digits,
    ipi_normalize,
    isni_normalize,
    isrc_normalize,
    iswc_check_digit,
    iswc_normalize,
    validate_isrc,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("USRC17607839", "USRC17607839"),
        ("us-rc1-76-07839", "USRC17607839"),
        ("GB-AYE-69-00531", "GBAYE6900531"),
        ("QZ ES8 19 00001", "QZES81900001"),  # RIAA overflow prefix
    ],
)
def test_isrc_known_good(raw, expected):
    assert isrc_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("USRC1760783", "isrc_length"),
        ("USRC176078390", "isrc_length"),
        ("XXRC17607839", "isrc_country"),  # not an ISO 3166 or IFPI prefix
        ("U1RC17607839", "isrc_format"),
        ("USRC1A607839", "isrc_format"),  # year must be digits
        ("USRC17607A39", "isrc_format"),
    ],
)
def test_isrc_known_bad(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        isrc_normalize(raw)
    assert excinfo.value.code == code


def test_model_validator_requires_compact_form():
    validate_isrc("USRC17607839")
    with pytest.raises(ValidationError):
        validate_isrc("US-RC1-76-07839")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0000 0001 2103 2683", "0000000121032683"),
        ("0000000121032683", "0000000121032683"),
        ("0000-0002-1825-0097", "0000000218250097"),  # ORCID range
        ("0000-0002-9079-593x", "000000029079593X"),  # X check character
    ],
)
def test_isni_known_good(raw, expected):
    assert isni_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("0000000121032684", "isni_checksum"),
        ("00000001210326", "isni_length"),
        ("00000001210326A3", "isni_format"),
    ],
)
def test_isni_known_bad(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        isni_normalize(raw)
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("T-034.524.680-1", "T0345246801"),  # the ISO 15707 example
        ("t0345246801", "T0345246801"),
        ("T-000.000.001-0", "T0000000010"),  # 1 + 9*1 = 10 -> 0
        ("T-100.000.000-8", "T1000000008"),  # 1 + 1*1 = 2 -> 8
    ],
)
def test_iswc_known_good(raw, expected):
    assert iswc_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("T-034.524.680-2", "iswc_checksum"),
        ("T-034.524.608-1", "iswc_checksum"),  # transposed digits
        ("0345246801", "iswc_format"),
        ("T-034.524.680", "iswc_format"),
        ("X-034.524.680-1", "iswc_format"),
    ],
)
def test_iswc_known_bad(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        iswc_normalize(raw)
    assert excinfo.value.code == code


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_iswc_check_digit_catches_every_single_digit_error(nine):
    digit = iswc_check_digit(nine)
    assert iswc_normalize(f"T{nine}{digit}") == f"T{nine}{digit}"
    for index in range(9):
        for replacement in "0123456789":
            if replacement == nine[index]:
                continue
            changed = nine[:index] + replacement + nine[index + 1 :]
            # Weight index+1 times a non-zero difference below 10 is a multiple of 10 only
            # for even weights with difference 5: the ISWC scheme's known blind spot.
            diff = abs(int(replacement) - int(nine[index]))
            if ((index + 1) * diff) % 10 == 0:
                continue
            with pytest.raises(ValidationError):
                iswc_normalize(f"T{changed}{digit}")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00014107338", "00014107338"),
        ("14107338", "00014107338"),  # leading zeros dropped, as often written
        ("000 522 100 40", "00052210040"),
        ("00000000000", "00000000000"),
    ],
)
def test_ipi_known_good(raw, expected):
    assert ipi_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("00014107339", "ipi_checksum"),
        ("00041107338", "ipi_checksum"),  # transposed digits
        ("00199340183", "ipi_checksum"),
        ("I-000000229-7", "ipi_format"),  # an IPI *base* number is not a name number
        ("123456789012", "ipi_format"),
        ("", "ipi_format"),
    ],
)
def test_ipi_known_bad(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        ipi_normalize(raw)
    assert excinfo.value.code == code


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_ipi_check_digits_detect_single_digit_errors(nine):
    check = ipi_check_digits(nine)
    assert ipi_normalize(nine + check) == nine + check
    for index in range(9):
        replacement = str((int(nine[index]) + 1) % 10)
        changed = nine[:index] + replacement + nine[index + 1 :]
        # A single changed digit moves the weighted sum by (10-index)*d, never a multiple
        # of 101, so the check digits change unless the mod-100 fold maps both to 00.
        if ipi_check_digits(changed) == check:
            assert {check} == {"00"}
            continue
        with pytest.raises(ValidationError):
            ipi_normalize(changed + check)


def test_currency():
    assert currency_normalize(" eur ") == "EUR"
    with pytest.raises(ValidationError):
        currency_normalize("EURO")
    with pytest.raises(ValidationError):
        currency_normalize("XYZ")
