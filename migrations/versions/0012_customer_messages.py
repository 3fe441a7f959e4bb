"""Customer messages delivered: rendered outbox messages with one delivery per channel, the
customer's language and opt-outs, portal links, survey responses, the decision and review dates,
the messages an instance waits for, and tasks answered by the customer

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=8), server_default='zh', nullable=False))
        batch_op.add_column(sa.Column('sms_opt_out', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('email_opt_out', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('process_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('messages', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('awaits', sa.String(length=400), server_default='', nullable=False))
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('completed_by_customer', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('subject', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sms_text', sa.Text(), nullable=True))
        batch_op.create_unique_constraint('uq_outbox_message_key', ['key'])
    # Messages written before delivery existed carry no content to send (their payload was empty).
    op.execute("UPDATE outbox_message SET status = 'not_sent' WHERE status = 'pending'")
    op.create_table(
        'delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('provider_ref', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'], name='fk_delivery_message_id_outbox_message'),
        sa.PrimaryKeyConstraint('id', name='pk_delivery'))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_delivery_message_id', ['message_id'], unique=False)
    op.create_table(
        'portal_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name='fk_portal_link_complaint_id_complaint'),
        sa.ForeignKeyConstraint(['message_id'], ['outbox_message.id'], name='fk_portal_link_message_id_outbox_message'),
        sa.PrimaryKeyConstraint('id', name='pk_portal_link'),
        sa.UniqueConstraint('token_hash', name='uq_portal_link_token_hash'))
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.create_index('ix_portal_link_complaint_id', ['complaint_id'], unique=False)
    op.create_table(
        'survey_response',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('complaint_id', sa.Integer(), nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name='fk_survey_response_complaint_id_complaint'),
        sa.PrimaryKeyConstraint('id', name='pk_survey_response'),
        sa.UniqueConstraint('complaint_id', name='uq_survey_response_complaint_id'))


def downgrade():
    op.drop_table('survey_response')
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_link_complaint_id')
    op.drop_table('portal_link')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_message_id')
        batch_op.drop_index('ix_delivery_due')
    op.drop_table('delivery')
    op.execute("UPDATE outbox_message SET status = 'pending' WHERE status IN ('not_sent', 'queued')")
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint('uq_outbox_message_key', type_='unique')
        for column in ('sms_text', 'body', 'subject', 'language', 'key'):
            batch_op.drop_column(column)
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): rebuilding these tables in batch mode would drop
    # tables other rows still reference.
    op.drop_column('human_task', 'completed_by_customer')
    op.drop_column('process_instance', 'awaits')
    op.drop_column('process_version', 'messages')
    for column in ('email_opt_out', 'sms_opt_out', 'language', 'review_until', 'decided_at'):
        op.drop_column('complaint', column)
