"""The Great Expectations Data Docs site for auditors: an index and a page per validation run.

Each batch's validation result is kept as JSON under ``$EDW_DATA_DIR/validation/<feed>/`` by the
pipeline; this module loads them into a file-backed GX context under ``$EDW_DATA_DIR/gx`` and renders
the site into ``$EDW_DATA_DIR/docs/validation`` (static HTML, opens from the file system).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from ..config import settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
SITE = "validation"


def build_data_docs(data_dir: Path | None = None) -> Path:
    """Render every kept validation result; returns the site's index.html."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    data_dir = data_dir or settings().data_dir
    site_dir = data_dir / "docs" / SITE
    context = gx.get_context(mode="file", project_root_dir=str(data_dir / "gx"))
    context.variables.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    context.variables.save()
    schema = ExpectationSuiteValidationResultSchema()
    for path in sorted((data_dir / "validation").glob("*/*.json")):
        feed, batch = path.parent.name, path.stem
        result = schema.load(json.loads(path.read_text(encoding="utf-8")))
        result.suite_name = feed
        run_time = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=feed),
            run_id=RunIdentifier(run_name=batch, run_time=run_time),
            batch_identifier=batch,
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[SITE])
    return site_dir / "index.html"
