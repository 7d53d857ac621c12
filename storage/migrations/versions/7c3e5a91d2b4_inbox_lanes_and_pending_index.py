"""inbox lanes, and one partial index on pending events for claiming

Revision ID: 7c3e5a91d2b4
Revises: 287f035cbe32
Create Date: 2026-11-28 11:10:00.000000

Each inbox row gets the lane its owner hashes to (`storage.lanes.lane_of`): on PostgreSQL
concurrent workers claim from disjoint lanes. Events still pending are given theirs here,
from their payload, with a frozen copy of the rule (`StripeEvent.owner_id`); everything
else keeps lane 0. The two indexes the claim used (`status, next_attempt_at` and `status,
created`) become one index on `created` over pending rows only.
"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c3e5a91d2b4'
down_revision: str | None = '287f035cbe32'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LANES = 64
CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_index('ix_stripe_event_queue')
        batch_op.drop_index('ix_stripe_event_due')
        batch_op.create_index(
            'ix_stripe_event_pending',
            ['created'],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
    _give_pending_events_their_lanes()


def downgrade() -> None:
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_stripe_event_pending',
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index('ix_stripe_event_due', ['status', 'created'], unique=False)
        batch_op.create_index('ix_stripe_event_queue', ['status', 'next_attempt_at'], unique=False)
        batch_op.drop_column('lane')


def _give_pending_events_their_lanes() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, object_id, payload FROM stripe_event WHERE status = 'pending'")
    ).all()
    owners = {event_id: _owner(payload) for event_id, _, payload in rows}
    parents = {  # a parent's lane, from its pending events
        object_id: _lane(owners[event_id][0])
        for event_id, object_id, _ in rows
        if object_id and owners[event_id][1] is None
    }
    lanes = []
    for event_id, _, _ in rows:
        owner, parent = owners[event_id]
        lane = parents[parent] if parent in parents else _lane(owner)
        if lane:
            lanes.append({'id': event_id, 'lane': lane})
    update = sa.text('UPDATE stripe_event SET lane = :lane WHERE id = :id')
    for first in range(0, len(lanes), CHUNK):
        connection.execute(update, lanes[first : first + CHUNK])


def _owner(payload: str) -> tuple[str | None, str | None]:
    """`StripeEvent.lane_owner` as of this revision: (owner, parent); (None, None) when the
    payload is not an event with an object (the worker parks it as dead)."""
    try:
        obj = json.loads(payload)['data']['object']
    except (ValueError, TypeError, KeyError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    object_id = _id(obj.get('id'))
    if obj.get('object') == 'customer':
        return object_id, None
    customer = _id(obj.get('customer'))
    if customer:
        return customer, None
    field = {'refund': 'charge', 'invoice_payment': 'invoice'}.get(obj.get('object'), '')
    parent = _id(obj.get(field))
    return (parent, parent) if parent else (object_id, None)


def _id(value) -> str | None:
    if isinstance(value, dict):
        value = value.get('id')
    return value if isinstance(value, str) and value else None


def _lane(owner: str | None) -> int:
    """`storage.lanes.lane_of` as of this revision."""
    if not owner:
        return 0
    return hashlib.md5(owner.encode(), usedforsecurity=False).digest()[0] % LANES
