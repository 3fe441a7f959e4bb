"""app.accounts' refusals in the UI's language (the admin pages and one's own account page use them)."""
from flask_babel import gettext as _

from ..accounts import MESSAGES, AccountError


def account_message(err: AccountError) -> str:
    return _(MESSAGES[err.code], **err.params)
