"""The docker-compose full stack, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_every_component_of_the_full_stack_is_a_service():
    expected = {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
        "airflow-db",
        "redis",
        "warehouse",
        "simulator",
        "docs",
    }
    assert expected <= set(SERVICES)
    assert SERVICES["airflow-worker"]["command"] == "celery worker"
    env = SERVICES["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@airflow-db:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["EDW_WAREHOUSE_URL"].startswith("postgresql://edw_loader:")
    # dbt builds as the role roles.sql makes owner of what it builds: edw_loader may not create in marts
    assert env["EDW_TRANSFORM_WAREHOUSE_URL"].startswith("postgresql://edw_transformer:")
    assert env["EDW_TRANSFORM_WAREHOUSE_URL"].split("@")[1] == env["EDW_WAREHOUSE_URL"].split("@")[1]


def test_images_are_pinned_and_the_project_image_builds_from_the_lock():
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image and ":" in image and not image.endswith(":latest"), name
    dockerfile = (ROOT / service_dockerfile()).read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "-c /opt/edw/requirements/constraints.txt" in dockerfile


def service_dockerfile() -> str:
    return SERVICES["airflow-scheduler"]["build"]["dockerfile"]


def test_long_running_services_have_healthchecks_and_dependencies_wait_for_health():
    for name, service in SERVICES.items():
        if name == "airflow-init":
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"], name
    deps = SERVICES["airflow-scheduler"]["depends_on"]
    assert deps["airflow-db"]["condition"] == "service_healthy"
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"


def test_no_secret_is_written_in_the_repository():
    secret_key = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|SALT")
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if secret_key.search(key):
                assert value.startswith("${"), f"{name}: {key} is written in the file"
            credentials = re.search(r"://[^:/@]+:([^@]*)@", value)
            if credentials:
                assert credentials.group(1).startswith("${"), f"{name}: {key} embeds a password"
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, _, value = line.partition("=")
        if value and not line.startswith("#") and secret_key.search(key):
            raise AssertionError(f".env.example must leave {key} empty")
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_warehouse_creates_its_four_roles_on_first_start():
    mounts = SERVICES["warehouse"]["volumes"]
    assert any("roles.sql" in m for m in mounts) and any("01-roles.sh" in m for m in mounts)
    sql = (ROOT / "plugins" / "emergency_dw" / "warehouse" / "roles.sql").read_text()
    for role in ("edw_loader", "edw_transformer", "bi_reader", "auditor"):
        assert role in sql


# What a committed secret looks like, in any tracked file (the lock file's hashes aside).
SECRET_SHAPES = {
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "an AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "a Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "a JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "a password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"{}$]+:(?!\$\{|\{)[^\s@'\"{}$]+@"),
}
# A setting whose name says secret, given a value (``name = value``, ``name: value``, ``name=value``) ...
SECRET_SETTING = re.compile(
    r"""(?ix)\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|salt|fernet[_-]?key)[\w.-]*["']?
    \s*(?:=|:\s)\s*(?P<value>"[^"]*"|'[^']*'|[^\s#,)]+)"""
)


def _literal_secret(value: str) -> bool:
    """... that is a literal: not empty or short, not a reference (${X}, $X, {{ }}), not the name of an
    environment variable, not code (an identifier or a call)."""
    quoted = value[:1] in "\"'"
    text = value.strip("\"'")
    if len(text) < 8 or text.startswith("$") or "${" in text or "{{" in text:
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", text):  # EDW_SOURCE_API_TOKEN: a variable's name
        return False
    return quoted or not re.fullmatch(r"[A-Za-z_][\w.]*(\(.*)?", text)


def _secret_settings(line: str) -> list[str]:
    return [m.group(0) for m in SECRET_SETTING.finditer(line) if _literal_secret(m.group("value"))]


def _tracked_files() -> list[Path]:
    import subprocess

    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in out.stdout.split("\0") if name]


def test_no_secret_is_committed_anywhere_in_the_repository():
    """Every tracked file: no private key, cloud or chat token, JWT or password inside a URL; outside the
    tests (whose throwaway credentials are made up), no literal given to a password, secret, token or salt
    setting; no .env or key file; dbt's personal-data salt has no default written in the project."""
    files = _tracked_files()
    assert ROOT / ".env" not in files and not [p for p in files if p.suffix in (".pem", ".key", ".p12")]
    findings, scanned = [], 0
    for path in files:
        if path.name == "constraints.txt" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        text = data.decode("utf-8", errors="replace")
        scanned += 1
        where = path.relative_to(ROOT)
        for what, shape in SECRET_SHAPES.items():
            findings += [f"{where}: {what}: {m.group(0)[:40]}" for m in shape.finditer(text)]
        if where.parts[0] != "tests":
            for number, line in enumerate(text.splitlines(), 1):
                findings += [f"{where}:{number}: {found}" for found in _secret_settings(line)]
    assert scanned > 200, "the scan read the repository"
    assert not findings, "\n".join(findings)
    salt_macro = (ROOT / "dbt_project" / "macros" / "pii.sql").read_text()
    assert 'env_var("EDW_PII_SALT")' in salt_macro and 'env_var("EDW_PII_SALT",' not in salt_macro


def test_the_secret_scan_finds_what_it_looks_for():
    """The patterns do flag real-looking secrets, and leave references alone (so a clean scan means
    something). The samples are assembled here so that this file itself holds none."""
    key, url = "-----BEGIN RSA " + "PRIVATE KEY-----", "postgresql://edw_loader:" + "s3cr3tpass@warehouse/edw"
    assert SECRET_SHAPES["a private key"].search(key) and SECRET_SHAPES["a password in a URL"].search(url)
    assert SECRET_SHAPES["an AWS access key"].search("AKIA" + "IOSFODNN7EXAMPLE")
    for line in (
        "AIRFLOW__API_AUTH__JWT_SECRET: " + '"averylongsecretvalue"',
        "EDW_PII_SALT=" + "edw-salt-1234",
        "password = " + "'hunter2hunter2'",
    ):
        assert _secret_settings(line), line
    for line in (
        "AIRFLOW__CORE__FERNET_KEY: ${AIRFLOW_FERNET_KEY:?set AIRFLOW_FERNET_KEY in .env}",
        "EDW_PII_SALT=",
        'token = os.environ.get("EDW_SIM_API_TOKEN")',
        'API_TOKEN = "EDW_SOURCE_API_TOKEN"',
        "alter role auditor password :'auditor_password';",
        '-v loader_password="$EDW_LOADER_PASSWORD"',
    ):
        assert not _secret_settings(line), line
    assert not SECRET_SHAPES["a password in a URL"].search(
        "postgresql://airflow:${AIRFLOW_DB_PASSWORD}@airflow-db:5432/airflow"
    )


def test_the_personal_data_salt_is_the_environments_or_a_random_one_kept_in_the_data_directory(
    tmp_path: Path, monkeypatch
):
    from emergency_dw.transform import dbt_environment, pii_salt

    monkeypatch.setenv("EDW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EDW_PII_SALT", raising=False)
    salt = pii_salt()
    assert len(salt) == 64 and salt != "edw", "a random salt, not one written in the repository"
    kept = tmp_path / "data" / ".pii_salt"
    assert kept.read_text().strip() == salt and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert pii_salt() == salt, "the same salt on every build: the hashes stay stable"
    assert dbt_environment("duckdb:///x.duckdb")["EDW_PII_SALT"] == salt
    monkeypatch.setenv("EDW_PII_SALT", "from-the-environment")
    assert dbt_environment("duckdb:///x.duckdb")["EDW_PII_SALT"] == "from-the-environment"
    assert SERVICES["airflow-scheduler"]["environment"]["EDW_PII_SALT"].startswith("${EDW_PII_SALT:?")
