"""The intake form of a complaint: its fields described like a task form's JSON Schema (so the same
macros draw it), and complaints.register's validation messages as translated sentences per field."""
from flask_babel import gettext as _

from ... import complaints, contact_rules
from ...extensions import db
from ...input_rules import BAD_TEXT, BLANK
from ..formrender_codes import intake_property
from ..ui import CHANNEL_LABELS, id_type_labels


def coded_properties() -> dict:
    """The coded intake fields (complaints.CODED_INTAKE) as selects of the vocabularies in force; free
    text when the deployed procedure has no vocabulary for one."""
    category = intake_property("category", _("Category"), _("The regulator's classification first, then the "
                                                            "kind of problem.")) or \
        {"type": "string", "title": _("Category"), "maxLength": 64}
    product_line = intake_property("product_line", _("Product line"), _("The type of insurance of the policy."))
    return {"category": category, **({"product_line": product_line} if product_line else {})}


def intake_schema() -> dict:
    """The intake fields (see complaints.ComplaintIn) described like a form schema, for the same macros."""
    handlers = complaints.claim_handlers(db.session)
    coded = coded_properties()
    return {"type": "object", "required": ["channel", "customer_name", "phone", "policy_number", *coded,
                                           "description", "received_at"],
            "properties": {**coded,
                "channel": {"type": "string", "title": _("Channel"), "enum": list(CHANNEL_LABELS),
                            "x-enumNames": [str(v) for v in CHANNEL_LABELS.values()], "x-widget": "select"},
                "received_at": {"type": "string", "format": "date-time", "title": _("Received at"),
                                "description": _("When the customer complained (Beijing time).")},
                "customer_name": {"type": "string", "title": _("Customer name"), "maxLength": 100},
                "phone": {"type": "string", "title": _("Phone"), "maxLength": 32, "x-input": "tel",
                          "description": _("A mainland mobile, or a landline with its area code (e.g. "
                                           "010-12345678); a number abroad with + and its country code.")},
                "email": {"type": "string", "title": _("E-mail"), "maxLength": 254, "x-input": "email"},
                "id_type": {"type": "string", "title": _("ID type"), "enum": list(contact_rules.ID_TYPES),
                            "x-enumNames": [str(v) for v in id_type_labels().values()], "x-widget": "select",
                            "default": "resident_id"},
                "id_number": {"type": "string", "title": _("ID number"), "maxLength": 32},
                "policy_number": {"type": "string", "title": _("Policy number"), "maxLength": 64},
                "claim_number": {"type": "string", "title": _("Claim number"), "maxLength": 64},
                "claim_handler": {"type": "string", "title": _("Handler of the original claim"),
                                  "description": _("They may not see or handle this complaint (回避)."),
                                  "enum": [u.username for u in handlers],
                                  "x-enumNames": [f"{u.display_name} ({u.username})" for u in handlers],
                                  "x-widget": "select"},
                "claim_handler_external": {
                    "type": "string", "title": _("Handler outside the system"), "maxLength": 100,
                    "description": _("Only when the original claim was handled by someone without an account "
                                     "here (e.g. an agency). Recorded for the file; it excludes nobody.")},
                "description": {"type": "string", "title": _("Description"), "maxLength": 5000,
                                "x-widget": "textarea"},
            }}


RESIDENT_ID = contact_rules.RESIDENT_ID_PROBLEMS
# complaints.register's messages (or a part of them) -> the kind of sentence shown; the first match counts.
INTAKE_MESSAGES = {
    "Missing data for required field.": "required", "Field may not be null.": "required",
    contact_rules.NOT_A_PERSONAL_PHONE: "service_phone",
    "Not a valid email address.": "email", "not a valid phone number": "phone",
    contact_rules.ID_TYPE_NEEDED: "id_type_needed",
    **{RESIDENT_ID[kind]: "resident_id_" + kind.__name__ for kind in RESIDENT_ID},
    **{message: "document_" + id_type if id_type != "other" else "long"
       for id_type, (_pattern, message) in contact_rules.DOCUMENT_PATTERNS.items()},
    "received_at is in the future": "future", "received_at is before 2000": "too_old",
    "no such user": "unknown_user", BAD_TEXT: "bad_text", "Not a valid datetime.": "datetime",
    "Not a valid aware datetime.": "datetime", "Must be one of": "choice", "Longer than maximum length": "long",
    "Length must be between": "long", BLANK: "required",
    "is not a code of": "choice", "is retired": "retired", "is a group": "group",
}


def intake_errors(schema, fields: dict) -> dict:
    out = {}
    for name, message in fields.items():
        kind = next((k for text, k in INTAKE_MESSAGES.items() if text in message), None)
        prop = schema["properties"].get(name, {})
        out[name] = {
            "required": _("This field is required."), "email": _("Not a valid e-mail address."),
            "phone": _("Not a valid phone number."), "future": _("The time received cannot be in the future."),
            "service_phone": _("A service number (such as 400 or 800) does not reach the customer: enter their "
                               "mobile or landline."),
            "id_type_needed": _("Choose the type of identity document of this number."),
            "resident_id_InvalidLength": _("A resident ID number has 18 characters."),
            "resident_id_InvalidFormat": _("A resident ID number is 17 digits and a last digit or X."),
            "resident_id_InvalidChecksum": _("The check digit (the last character) of this resident ID number "
                                             "does not match: check it for a typing error."),
            "resident_id_InvalidComponent": _("This resident ID number holds no valid birth date or region code."),
            "document_hk_macao_permit": _("A Hong Kong/Macao permit number is H or M followed by 8 or 10 digits."),
            "document_taiwan_permit": _("A Taiwan permit number is 8 digits (10 letters and digits on an old "
                                        "permit)."),
            "document_passport": _("A passport number is 5 to 20 letters and digits."),
            "too_old": _("The time received cannot be before the year 2000."),
            "bad_text": _("This text contains characters that are not allowed (such as NUL)."),
            "unknown_user": _("Choose a user from the list; a handler without an account goes in “Handler "
                              "outside the system”."),
            "datetime": _("Enter a date and time."), "choice": _("Choose one of the options."),
            "retired": _("This code is retired and no longer used for new complaints; choose a current one."),
            "group": _("Choose a more specific entry of this group."),
            "long": _("At most %(num)d characters.", num=prop.get("maxLength", 0)),
        }.get(kind, message)
    return out
