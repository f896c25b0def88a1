"""initial schema: every table of SPEC §6 state

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import daemon.store.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('blocked_underlyings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('underlying', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('blocked_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged', sa.Boolean(), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_at', daemon.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blocked_underlyings')),
    sa.UniqueConstraint('profile', 'underlying', name=op.f('uq_blocked_underlyings_profile'))
    )
    op.create_table('breaker_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=False),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('session_pnl', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_breaker_events'))
    )
    op.create_index('ix_breaker_events_profile_at', 'breaker_events', ['profile', 'at'])
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('equity', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('session_pnl', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('drawdown', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('exposure', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('open_positions', sa.Integer(), nullable=False),
    sa.Column('greeks', sa.JSON(), nullable=False),
    sa.Column('breaker_level', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    op.create_index('ix_checkpoints_profile_at', 'checkpoints', ['profile', 'at'])
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('signal_id', sa.String(length=128), nullable=True),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('contracts', sa.Integer(), nullable=False),
    sa.Column('notional', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('multiplier', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    op.create_index('ix_decisions_profile_at', 'decisions', ['profile', 'at'])
    op.create_index(op.f('ix_decisions_signal_id'), 'decisions', ['signal_id'])
    op.create_table('meta',
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('profile', 'key', name=op.f('pk_meta'))
    )
    op.create_table('operator_actions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('who', sa.String(length=64), nullable=False),
    sa.Column('why', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_actions'))
    )
    op.create_table('orders',
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('filled', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('avg_fill_price', daemon.store.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('updated_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('profile', 'order_id', name=op.f('pk_orders'))
    )
    op.create_index(op.f('ix_orders_order_ref'), 'orders', ['order_ref'])
    op.create_index('ix_orders_profile_updated_at', 'orders', ['profile', 'updated_at'])
    op.create_table('positions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('underlying', sa.String(length=16), nullable=False),
    sa.Column('contract_key', sa.String(length=64), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=False),
    sa.Column('strike', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('right', sa.String(length=1), nullable=False),
    sa.Column('multiplier', sa.Integer(), nullable=False),
    sa.Column('entry_time', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entry_price', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('original_qty', sa.Integer(), nullable=False),
    sa.Column('open_qty', sa.Integer(), nullable=False),
    sa.Column('realized_pnl', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('opened_by_signal_id', sa.String(length=128), nullable=True),
    sa.Column('closed_at', daemon.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions'))
    )
    op.create_index('ix_positions_profile_status', 'positions', ['profile', 'status'])
    op.create_table('signals',
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('received_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('profile', 'id', name=op.f('pk_signals'))
    )
    op.create_index('ix_signals_profile_received_at', 'signals', ['profile', 'received_at'])
    op.create_table('trading_state',
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('breaker_level', sa.Integer(), nullable=False),
    sa.Column('latched', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('since', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('profile', name=op.f('pk_trading_state'))
    )
    op.create_table('exit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_exit_events_position_id_positions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exit_events'))
    )
    op.create_index(op.f('ix_exit_events_position_id'), 'exit_events', ['position_id'])
    op.create_table('exit_states',
    sa.Column('position_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('updated_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_exit_states_position_id_positions')),
    sa.PrimaryKeyConstraint('position_id', name=op.f('pk_exit_states'))
    )
    op.create_table('fills',
    sa.Column('exec_id', sa.String(length=128), nullable=False),
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('contract_key', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('commission', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('realized_pnl', daemon.store.types.Money(precision=18, scale=4), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_fills_position_id_positions')),
    sa.PrimaryKeyConstraint('exec_id', name=op.f('pk_fills'))
    )
    op.create_index(op.f('ix_fills_order_id'), 'fills', ['order_id'])
    op.create_index(op.f('ix_fills_position_id'), 'fills', ['position_id'])
    op.create_index('ix_fills_profile_at', 'fills', ['profile', 'at'])
    op.create_table('order_intents',
    sa.Column('profile', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('parent_ref', sa.String(length=128), nullable=True),
    sa.Column('contract_key', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('order_type', sa.String(length=8), nullable=False),
    sa.Column('limit_price', daemon.store.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('stop_price', daemon.store.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('tif', sa.String(length=8), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', daemon.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_order_intents_position_id_positions')),
    sa.PrimaryKeyConstraint('profile', 'order_id', name=op.f('pk_order_intents'))
    )
    op.create_index(op.f('ix_order_intents_order_ref'), 'order_intents', ['order_ref'])
    op.create_index('ix_order_intents_profile_state', 'order_intents', ['profile', 'state'])


def downgrade() -> None:
    op.drop_index('ix_order_intents_profile_state', table_name='order_intents')
    op.drop_index(op.f('ix_order_intents_order_ref'), table_name='order_intents')
    op.drop_table('order_intents')
    op.drop_index('ix_fills_profile_at', table_name='fills')
    op.drop_index(op.f('ix_fills_position_id'), table_name='fills')
    op.drop_index(op.f('ix_fills_order_id'), table_name='fills')
    op.drop_table('fills')
    op.drop_table('exit_states')
    op.drop_index(op.f('ix_exit_events_position_id'), table_name='exit_events')
    op.drop_table('exit_events')
    op.drop_table('trading_state')
    op.drop_index('ix_signals_profile_received_at', table_name='signals')
    op.drop_table('signals')
    op.drop_index('ix_positions_profile_status', table_name='positions')
    op.drop_table('positions')
    op.drop_index('ix_orders_profile_updated_at', table_name='orders')
    op.drop_index(op.f('ix_orders_order_ref'), table_name='orders')
    op.drop_table('orders')
    op.drop_table('operator_actions')
    op.drop_table('meta')
    op.drop_index(op.f('ix_decisions_signal_id'), table_name='decisions')
    op.drop_index('ix_decisions_profile_at', table_name='decisions')
    op.drop_table('decisions')
    op.drop_index('ix_checkpoints_profile_at', table_name='checkpoints')
    op.drop_table('checkpoints')
    op.drop_index('ix_breaker_events_profile_at', table_name='breaker_events')
    op.drop_table('breaker_events')
    op.drop_table('blocked_underlyings')
