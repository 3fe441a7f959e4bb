"""What a customer's contact data must be (issue 12, item 7): a phone number, an e-mail address and an
identity document, each checked by a well-kept library where there is one, and the form each is stored in.
Each check returns None when the value is fine, else an English sentence that says what is wrong (the API
gives it as it is; the web form matches its start in app/web/complaints/forms.py for a translated one).

Phone numbers (`phonenumbers`, Google's libphonenumber data): a number without a country code is read as
a mainland one — a mobile (11 digits, 1[3-9]…) or a landline with its area code (010-12345678,
0755 1234 5678); +86 / 0086 may be in front. A customer may live abroad: a number of any other region is
accepted with + and its country code (+852 9123 4567). Only numbers that reach a person are accepted:
mobiles and landlines, not service numbers (400/800, premium rate). Stored, mainland numbers are their
national digits (13800138000, 01012345678: what a person types, what SMS gateways in China take, and
how numbers were stored before); others are E.164 (+85291234567). A search normalises the query the same
way, so a number is found however it is typed.

E-mail (`email-validator`): syntax only, no DNS look-up (registration must not hang on a resolver); an
ASCII local part (the outbox sends without SMTPUTF8); stored with the domain in lower case.

Identity documents: `resident_id`, the 18-character resident ID (`stdnum.cn.ric`: check digit, birth
date and region code; a final lowercase x is accepted and stored as X); `hk_macao_permit` (港澳居民来往
内地通行证, 回乡证: H or M and 8 or 10 digits); `taiwan_permit` (台湾居民来往大陆通行证, 台胞证: 8 digits,
or 10 letters/digits on the old booklet); `passport` (5-20 letters and digits, any country); `other`
(any text up to 32 characters). Spaces, hyphens and brackets are dropped and letters upper-cased before
the check, and the number is stored that way."""
import re
from typing import Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric

ID_TYPES = ("resident_id", "passport", "hk_macao_permit", "taiwan_permit", "other")
MAINLAND = "CN"
PHONE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
               phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}

NOT_A_PHONE = ("not a valid phone number: a mainland mobile (11 digits) or a landline with its area code "
               "(e.g. 010-12345678), or + and the country code for a number abroad")
NOT_A_PERSONAL_PHONE = ("not a valid phone number: a service number (e.g. 400/800) does not reach the customer; "
                        "give their mobile or landline")
NOT_AN_EMAIL = "Not a valid email address."
ID_TYPE_NEEDED = "id_type is required when id_number is given"

# The document checks' messages, by document type (and, for the resident ID, by what is wrong).
RESIDENT_ID_PROBLEMS = {
    stdnum_errors.InvalidLength: "not a valid resident ID number: it has 18 characters",
    stdnum_errors.InvalidFormat: "not a valid resident ID number: 17 digits and a last digit or X",
    stdnum_errors.InvalidChecksum: "not a valid resident ID number: the check digit (the last character) "
                                   "does not match, check for a typing error",
    stdnum_errors.InvalidComponent: "not a valid resident ID number: no valid birth date or region code in it",
}
DOCUMENT_PATTERNS = {
    "hk_macao_permit": (re.compile(r"[HM](\d{8}|\d{10})"),
                        "not a valid Hong Kong/Macao permit number: H or M and 8 or 10 digits"),
    "taiwan_permit": (re.compile(r"\d{8}|[0-9A-Z]{10}"),
                      "not a valid Taiwan permit number: 8 digits (or 10 letters and digits on an old permit)"),
    "passport": (re.compile(r"[0-9A-Z]{5,20}"), "not a valid passport number: 5 to 20 letters and digits"),
    "other": (re.compile(r".{1,32}", re.S), "not a valid document number: at most 32 characters"),
}
RESIDENT_ID_FORM = re.compile(r"\d{17}[\dX]")
SEPARATORS = re.compile(r"[\s\-()（）]+")


# ---- phone numbers -----------------------------------------------------------------------------------------
def _parsed_phone(text: str):
    try:
        return phonenumbers.parse(text or "", MAINLAND)
    except phonenumbers.NumberParseException:
        return None


def phone_problem(text: str) -> Optional[str]:
    number = _parsed_phone(text)
    if number is None or not phonenumbers.is_valid_number(number):
        return NOT_A_PHONE
    if phonenumbers.number_type(number) not in PHONE_TYPES:
        return NOT_A_PERSONAL_PHONE
    return None


def stored_phone(text: str) -> Optional[str]:
    """The form a valid phone number is stored in (see the module's text), or None for anything else."""
    if phone_problem(text) is not None:
        return None
    number = _parsed_phone(text)
    if number.country_code == phonenumbers.country_code_for_region(MAINLAND):
        return re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---- e-mail ------------------------------------------------------------------------------------------------
def _checked_email(text: str):
    return validate_email(text, check_deliverability=False, allow_smtputf8=False)


def email_problem(text: str) -> Optional[str]:
    try:
        _checked_email(text)
    except EmailNotValidError as err:
        return f"{NOT_AN_EMAIL} {err}"
    return None


def stored_email(text: str) -> str:
    """An internationalised domain as its ASCII (IDNA) form: the outbox sends without SMTPUTF8."""
    checked = _checked_email(text)
    return checked.ascii_email or checked.normalized


# ---- identity documents ------------------------------------------------------------------------------------
def compact_document(id_type: Optional[str], text: str) -> str:
    """The number as checked and stored: no separators, letters upper-case (`other`: only trimmed)."""
    if id_type == "other":
        return text.strip()
    return SEPARATORS.sub("", text).upper()


def document_problem(id_type: str, text: str) -> Optional[str]:
    number = compact_document(id_type, text)
    if id_type == "resident_id":
        if len(number) == 18 and not RESIDENT_ID_FORM.fullmatch(number):   # (stdnum: a final Y = bad check digit)
            return RESIDENT_ID_PROBLEMS[stdnum_errors.InvalidFormat]
        try:
            ric.validate(number)
        except stdnum_errors.ValidationError as err:
            return next((m for kind, m in RESIDENT_ID_PROBLEMS.items() if isinstance(err, kind)),
                        RESIDENT_ID_PROBLEMS[stdnum_errors.InvalidFormat])
        return None
    pattern, message = DOCUMENT_PATTERNS[id_type]
    return None if pattern.fullmatch(number) else message
