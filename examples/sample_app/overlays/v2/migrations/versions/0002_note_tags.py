"""notes.tag (nullable)

Revision ID: 0002_note_tags
Revises: 0001_initial
"""
from alembic import op

revision = "0002_note_tags"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE notes ADD COLUMN tag text NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE notes DROP COLUMN tag")
