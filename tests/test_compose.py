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
