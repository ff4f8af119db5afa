-- The warehouse's roles (DESIGN section 8). psql variables: loader_password, transformer_password,
-- bi_reader_password, auditor_password. Safe to run again: roles and grants are idempotent.
-- Roles are the cluster's: run it once per cluster. The readers' grants do not depend on it: the load and
-- the build grant what they create to those of the readers (dbt_project.yml, vars.reader_roles) that exist.
\set ON_ERROR_STOP on

select format('create role %I login', r) from unnest(array['edw_loader', 'edw_transformer', 'bi_reader', 'auditor']) as r
where not exists (select 1 from pg_roles where rolname = r) \gexec

alter role edw_loader password :'loader_password';
alter role edw_transformer password :'transformer_password';
alter role bi_reader password :'bi_reader_password';
alter role auditor password :'auditor_password';

-- edw_loader writes raw, quarantine and audit (the ingestion DAGs)
create schema if not exists raw authorization edw_loader;
create schema if not exists quarantine authorization edw_loader;
create schema if not exists audit authorization edw_loader;
-- the partitions `edw retention` takes out of raw (run as edw_loader): kept until a DBA drops them
create schema if not exists raw_detached authorization edw_loader;

-- edw_transformer reads what the loader wrote and owns what dbt builds
create schema if not exists staging authorization edw_transformer;
create schema if not exists intermediate authorization edw_transformer;
create schema if not exists marts authorization edw_transformer;
create schema if not exists reference authorization edw_transformer;
grant usage on schema raw, audit to edw_transformer;
grant select on all tables in schema raw, audit to edw_transformer;
alter default privileges for role edw_loader in schema raw, audit grant select on tables to edw_transformer;

-- bi_reader: SELECT on marts only
grant usage on schema marts to bi_reader;
grant select on all tables in schema marts to bi_reader;
alter default privileges for role edw_transformer in schema marts grant select on tables to bi_reader;

-- auditor: marts and audit; quarantine through views that mask personal fields (created by edw)
grant usage on schema marts, audit to auditor;
grant select on all tables in schema marts, audit to auditor;
alter default privileges for role edw_transformer in schema marts grant select on tables to auditor;
alter default privileges for role edw_loader in schema audit grant select on tables to auditor;
