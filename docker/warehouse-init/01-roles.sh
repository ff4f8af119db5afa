#!/bin/bash
# Runs once, when the warehouse volume is first created: the four roles and their schemas.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v loader_password="$EDW_LOADER_PASSWORD" \
    -v transformer_password="$EDW_TRANSFORMER_PASSWORD" \
    -v bi_reader_password="$BI_READER_PASSWORD" \
    -v auditor_password="$AUDITOR_PASSWORD" \
    -f /docker-entrypoint-initdb.d/roles.sql.in
