"""deliberately broken migration: creates a table, then fails with a SQL error

Run transactionally (see env.py), the table creation is rolled back too, and the
database stays at 0002_note_tags.

Revision ID: 0003_broken
Revises: 0002_note_tags
"""
from alembic import op

revision = "0003_broken"
down_revision = "0002_note_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE note_archive (id integer PRIMARY KEY, body text NOT NULL)")
    op.execute("ALTER TABLE notes ADD COLUMN archived boolean NOT NULL DEFAULT false")
    # The error: this column does not exist.
    op.execute("INSERT INTO note_archive (id, body) SELECT id, body FROM notes WHERE archived_at IS NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE notes DROP COLUMN archived")
    op.execute("DROP TABLE note_archive")
