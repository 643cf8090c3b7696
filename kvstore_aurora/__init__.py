"""kvstore's ``aurora`` backend: each kind a PostgreSQL table, through psycopg 3."""
