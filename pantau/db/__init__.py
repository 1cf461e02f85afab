"""Database access shared by every Pantau service: connecting, migrations."""
