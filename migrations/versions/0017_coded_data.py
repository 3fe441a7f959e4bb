"""coded data: the complaint's category, product line, cause and responsible party hold codes of the
controlled vocabularies in processes/vocabularies/ (indexed with the received time); the free-text
categories registered before are mapped to codes where they are known, the rest stay as they were
and are listed by `flask vocab unmapped` for a person to map (`flask vocab map OLD CODE`)

Revision ID: 0017
Revises: 0016
"""
import logging
import re

from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

COLUMNS = ('product_line', 'cause_code', 'responsible_party')
INDEXED = ('category',) + COLUMNS

# The free-text categories known to have been typed before coded categories, by their normalized text
# (no spaces, ASCII lower-case), and their codes in processes/vocabularies/category.toml as it was when
# this migration was written. Frozen here: later edits of the vocabulary do not change what was mapped.
KNOWN = {
    'claim_delay': ('理赔时效', '理赔时效问题', '理赔慢', '理赔太慢', '理赔速度慢', '理赔拖延', '赔付慢', '赔付延迟',
                    '迟迟未赔付', '理赔进度', '理赔时效投诉'),
    'claim_amount': ('理赔金额', '理赔金额争议', '理赔金额问题', '赔付金额', '赔付金额争议', '赔款金额', '金额争议',
                     '赔付不足'),
    'claim_denial': ('拒赔', '拒赔争议', '拒绝赔付', '拒赔纠纷', '不予赔付'),
    'claim_documents': ('理赔材料', '理赔手续', '理赔资料', '理赔材料与手续', '理赔手续繁琐'),
    'claim_other': ('理赔纠纷', '理赔', '理赔问题', '其他理赔问题'),
    'sales_misleading': ('销售误导', '误导销售', '夸大宣传'),
    'sales_other': ('销售纠纷', '销售问题'),
    'underwriting': ('承保纠纷', '承保', '核保', '承保问题'),
    'surrender': ('退保纠纷', '退保', '退保问题', '退保金额'),
    'policy_service': ('保全纠纷', '保全', '保全变更', '续期', '续保'),
    'service_attitude': ('服务态度', '服务态度差', '态度差', '态度恶劣'),
    'service_response': ('响应慢', '联系不上', '电话打不通', '回复慢'),
    'service_other': ('服务质量', '服务', '服务问题'),
    'misconduct': ('违法违规', '涉嫌违法违规', '违规'),
    'other': ('其他', '其它'),
}
SPACES = re.compile(r'[\s\u3000]+')


def normalized(text):
    return SPACES.sub('', text or '').lower()


MAPPING = {normalized(text): code for code, texts in KNOWN.items() for text in texts}

complaint = sa.table('complaint', sa.column('number', sa.String), sa.column('category', sa.String),
                     sa.column('category_legacy', sa.String), sa.column('responsible_party', sa.String))
audit_event = sa.table('audit_event', sa.column('id', sa.Integer), sa.column('action', sa.String),
                       sa.column('element_id', sa.String), sa.column('business_key', sa.String),
                       sa.column('data', sa.JSON))


def map_categories(conn):
    """Each known free-text category becomes its code (the text kept in category_legacy); returns the
    values left as they were (codes already, or text nobody has mapped yet)."""
    values = conn.execute(sa.select(complaint.c.category).distinct()).scalars().all()
    left = []
    for value in values:
        code = MAPPING.get(normalized(value))
        if code is None or code == value:
            left.append(value)
            continue
        conn.execute(complaint.update().where(complaint.c.category == value)
                     .values(category=code, category_legacy=value))
    return left


def responsible_parties(conn):
    """The responsible party the analysis (分析原因并制定方案) recorded, as a code all along (its form's enum),
    copied from the latest completion of each complaint's analysis in the audit trail."""
    latest = {}
    rows = conn.execute(sa.select(audit_event.c.business_key, audit_event.c.data)
                        .where(audit_event.c.action == 'task_completed',
                               audit_event.c.element_id == 'analyse_and_plan')
                        .order_by(audit_event.c.id))
    for key, data in rows:
        party = ((data or {}).get('form_data') or {}).get('responsible_party')
        if key and isinstance(party, str):
            latest[key] = party
    if latest:
        conn.execute(complaint.update().where(complaint.c.number == sa.bindparam('key'))
                     .values(responsible_party=sa.bindparam('party')),
                     [{'key': k, 'party': v} for k, v in latest.items()])


# Plain ALTER TABLE ADD/DROP COLUMN on both databases (SQLite has DROP COLUMN since 3.35): a batch-mode copy
# of `complaint` would fail on SQLite for the rows of portal_link that refer to it.
def upgrade():
    # The vocabularies a version was deployed with (app/vocab.py); none for the versions before.
    op.add_column('process_version', sa.Column('vocabularies', sa.JSON(), server_default='{}', nullable=False))
    op.add_column('complaint', sa.Column('category_legacy', sa.String(length=64), nullable=True))
    for column in COLUMNS:
        op.add_column('complaint', sa.Column(column, sa.String(length=64), nullable=True))
    for column in INDEXED:
        op.create_index(f'ix_complaint_{column}', 'complaint', [column, 'received_at'], unique=False)
    conn = op.get_bind()
    left = map_categories(conn)
    responsible_parties(conn)
    if left:
        log.info("coded categories: %d value(s) left as they were (codes, or text to map by hand): "
                 "`flask vocab unmapped` lists the ones that are no code", len(left))


def downgrade():
    conn = op.get_bind()
    conn.execute(complaint.update().where(complaint.c.category_legacy.is_not(None))
                 .values(category=complaint.c.category_legacy))
    for column in INDEXED:
        op.drop_index(f'ix_complaint_{column}', table_name='complaint')
    for column in reversed(COLUMNS):
        op.drop_column('complaint', column)
    op.drop_column('complaint', 'category_legacy')
    op.drop_column('process_version', 'vocabularies')
