"""combo positions (SPEC §9): their legs, their leg executions; position and fill keys widened

Revision ID: multileg_0001
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import daemon.store.types

revision: str = 'multileg_0001'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('positions') as batch:
        batch.alter_column('contract_key', existing_type=sa.String(length=64), type_=sa.String(length=200),
                           existing_nullable=False)
    with op.batch_alter_table('fills') as batch:
        batch.alter_column('contract_key', existing_type=sa.String(length=64), type_=sa.String(length=200),
                           existing_nullable=False)
    op.create_table('combo_positions',
    sa.Column('position_id', sa.Integer(), nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('structure', sa.String(length=16), nullable=False),
    sa.Column('value_offset', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('legs', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_combo_positions_position_id_positions')),
    sa.PrimaryKeyConstraint('position_id', name=op.f('pk_combo_positions'))
    )
    op.create_table('combo_leg_fills',
    sa.Column('exec_id', sa.String(length=128), nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('contract_key', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('commission', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_combo_leg_fills_position_id_positions')),
    sa.PrimaryKeyConstraint('exec_id', name=op.f('pk_combo_leg_fills'))
    )
    op.create_index(op.f('ix_combo_leg_fills_order_id'), 'combo_leg_fills', ['order_id'])
    op.create_index(op.f('ix_combo_leg_fills_position_id'), 'combo_leg_fills', ['position_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_combo_leg_fills_position_id'), table_name='combo_leg_fills')
    op.drop_index(op.f('ix_combo_leg_fills_order_id'), table_name='combo_leg_fills')
    op.drop_table('combo_leg_fills')
    op.drop_table('combo_positions')
    with op.batch_alter_table('fills') as batch:
        batch.alter_column('contract_key', existing_type=sa.String(length=200), type_=sa.String(length=64),
                           existing_nullable=False)
    with op.batch_alter_table('positions') as batch:
        batch.alter_column('contract_key', existing_type=sa.String(length=200), type_=sa.String(length=64),
                           existing_nullable=False)
