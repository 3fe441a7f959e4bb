"""contact data that is real: the complaint's identity document has a type (id_type: resident_id, passport,
hk_macao_permit, taiwan_permit, other) next to its number. Existing rows with an ID number get
`resident_id` where the number is a valid 18-digit resident ID (check digit, birth date and place), else
`other` (nobody guesses what an old free-text number was), and a valid one is stored as registration now
stores it (a final x as X); rows without an ID number keep id_type NULL.
Existing phone numbers that are valid are stored the way registration now stores them (mainland numbers
as their national digits, e.g. 13800138000 / 01012345678; other regions in E.164, e.g. +85291234567), so a
search and the repeat-complaint analysis find old and new rows alike; invalid old numbers stay as they were.

Revision ID: 0020
Revises: 0019
"""
import re

from alembic import op
import phonenumbers
import sqlalchemy as sa
from stdnum.cn import ric

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

complaint = sa.table('complaint', sa.column('id', sa.Integer), sa.column('phone', sa.String),
                     sa.column('id_number', sa.String), sa.column('id_type', sa.String))

# Frozen here (app/contact_rules.py may change later): the stored form of a phone number.
PHONE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
               phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def stored_phone(text):
    try:
        number = phonenumbers.parse(text or '', 'CN')
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in PHONE_TYPES:
        return None
    if number.country_code == 86:
        return re.sub(r'\D', '', phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def backfill(conn):
    rows = conn.execute(sa.select(complaint.c.id, complaint.c.phone, complaint.c.id_number)).all()
    for row in rows:
        values = {}
        phone = stored_phone(row.phone)
        if phone and phone != row.phone:
            values['phone'] = phone
        if row.id_number and ric.is_valid(row.id_number):
            values['id_type'] = 'resident_id'
            if ric.compact(row.id_number) != row.id_number:
                values['id_number'] = ric.compact(row.id_number)     # e.g. a final x stored as X
        elif row.id_number:
            values['id_type'] = 'other'
        if values:
            conn.execute(complaint.update().where(complaint.c.id == row.id).values(**values))


def upgrade():
    op.add_column('complaint', sa.Column('id_type', sa.String(length=20), nullable=True))
    backfill(op.get_bind())


def downgrade():
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): rebuilding complaint in batch mode would drop a
    # table other rows (portal links, survey answers) still reference.
    op.drop_column('complaint', 'id_type')
