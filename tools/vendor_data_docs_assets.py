"""Vendor the CSS, JavaScript and fonts the Great Expectations Data Docs templates load from CDNs.

GX 1.24.1's page templates (``great_expectations/render/view/templates/{page,index_page,
js_script_imports}.j2``) load bootstrap, bootstrap-table, jquery, popper, vega and font-awesome from
unpkg, jsdelivr, cdnjs and bootstrapcdn. Offline (an auditor's laptop, a locked-down network) the
index then shows no rows. This script fetches the exact files those URLs serve from the npm registry
(``npm pack``, at development time only), copies them with their licences into
``plugins/emergency_dw/reports/assets/data_docs/`` and writes ``manifest.json`` (URL -> local file,
package, version, licence, sha256) and ``README.md``. ``edw docs`` copies the folder into the site and
rewrites each URL to its local copy (``emergency_dw.reports.data_docs``).

Run it again after upgrading great_expectations:  python tools/vendor_data_docs_assets.py
It fails when the installed templates reference a URL that is not listed below (add it to ASSETS),
and when a file's sha384 differs from the template's ``integrity=`` attribute.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import great_expectations

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "plugins" / "emergency_dw" / "reports" / "assets" / "data_docs"
TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"

# (URL in GX's templates, npm package, exact version, file inside the package). For the `@5`/`@6`
# ranges jsdelivr serves the newest matching release's `jsdelivr` entry point: the version here is
# the newest release in that range when this was vendored (`npm view vega@5 version`).
ASSETS: list[tuple[str, str, str, str]] = [
    (
        "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
        "bootstrap",
        "4.3.1",
        "dist/css/bootstrap.min.css",
    ),
    (
        "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
        "bootstrap",
        "4.3.1",
        "dist/js/bootstrap.min.js",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
        "bootstrap-table",
        "1.19.1",
        "dist/bootstrap-table.min.css",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
        "bootstrap-table",
        "1.19.1",
        "dist/bootstrap-table.min.js",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "bootstrap-table",
        "1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        "bootstrap-table",
        "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
        "bootstrap-table",
        "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
        "bootstrap-datepicker",
        "1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
        "bootstrap-datepicker",
        "1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    (
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
        "@forevolve/bootstrap-dark",
        "1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    ("https://cdn.jsdelivr.net/npm/vega@5", "vega", "5.33.1", "build/vega.min.js"),
    ("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite", "5.23.0", "build/vega-lite.min.js"),
    ("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed", "6.29.0", "build/vega-embed.min.js"),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
        "@fortawesome/fontawesome-free",
        "6.6.0",
        "css/all.min.css",
    ),
    ("https://code.jquery.com/jquery-3.7.1.min.js", "jquery", "3.7.1", "dist/jquery.min.js"),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
        "popper.js",
        "1.12.9",
        "dist/umd/popper.min.js",
    ),
]
# Files a vendored file loads in turn (font-awesome's CSS: ../webfonts/*.woff2 and *.ttf).
EXTRA_FILES = {("@fortawesome/fontawesome-free", "6.6.0"): ["webfonts/"]}
LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "license")
# Packages whose npm tarball has no licence file: where the terms are stated instead.
LICENCE_NOTES = {
    "vega": (
        "The vega npm package ships no licence file; its package.json declares BSD-3-Clause, the licence of\n"
        "the Vega project (https://github.com/vega/vega), copyright the University of Washington Interactive\n"
        "Data Lab. The same licence text ships with vega-lite, vendored next to this folder.\n"
    ),
    "popper.js": (
        "popper.js 1.12.9 ships no licence file; popper.min.js's header reads:\n"
        '"Copyright (C) Federico Zivolo 2017. Distributed under the MIT License\n'
        '(license terms are at http://opensource.org/licenses/MIT)." package.json declares MIT.\n'
    ),
}
CDN_URL = re.compile(r"""(?:src|href)=["'](https?://[^"']+)["']""")


def folder(package: str, version: str) -> str:
    return f"{package.split('/')[-1]}@{version}"


def sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def template_urls() -> dict[str, str | None]:
    """Every CDN script/stylesheet URL in the installed templates, with its integrity= hash if any."""
    found: dict[str, str | None] = {}
    for template in sorted(TEMPLATES.glob("*.j2")):
        for line in template.read_text(encoding="utf-8").splitlines():
            if not re.search(r"<(script|link)\b", line):
                continue
            for url in CDN_URL.findall(line):
                integrity = re.search(r'integrity="([^"]+)"', line)
                found[url] = integrity.group(1) if integrity else None
    return found


def npm_pack(package: str, version: str, work: Path) -> Path:
    """The package's published tarball from the npm registry, unpacked; returns its `package/` dir."""
    out = subprocess.run(
        ["npm", "pack", "--silent", f"{package}@{version}"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"npm pack {package}@{version} failed: {out.stderr.strip()}")
    tarball = work / out.stdout.strip().splitlines()[-1]
    dest = work / folder(package, version)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


def main() -> int:
    urls = template_urls()
    listed = {url for url, *_ in ASSETS}
    missing = sorted(set(urls) - listed)
    if missing:
        sys.exit(
            "the GX templates load URLs not vendored here; add them to ASSETS:\n  " + "\n  ".join(missing)
        )
    if TARGET.exists():
        shutil.rmtree(TARGET)
    TARGET.mkdir(parents=True)
    entries, packages = [], {}
    with tempfile.TemporaryDirectory(prefix="edw-vendor-") as tmp:
        work = Path(tmp)
        for url, package, version, inner in ASSETS:
            if (package, version) not in packages:
                root = npm_pack(package, version, work)
                meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
                dest = TARGET / folder(package, version)
                dest.mkdir(parents=True, exist_ok=True)
                licence_file = next((root / n for n in LICENCE_FILES if (root / n).is_file()), None)
                if licence_file:
                    shutil.copy2(licence_file, dest / licence_file.name)
                else:
                    (dest / "LICENSE.txt").write_text(LICENCE_NOTES[package], encoding="utf-8")
                for extra in EXTRA_FILES.get((package, version), []):
                    shutil.copytree(root / extra, dest / extra)
                packages[(package, version)] = (root, meta.get("license", "see LICENSE"))
            root, licence = packages[(package, version)]
            source = root / inner
            local = Path(folder(package, version)) / inner
            (TARGET / local).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, TARGET / local)
            if urls.get(url) and sri(source) != urls[url]:
                sys.exit(
                    f"{package}@{version} {inner}: sha384 differs from the template's integrity {urls[url]}"
                )
            entries.append(
                {
                    "url": url,
                    "package": package,
                    "version": version,
                    "file": local.as_posix(),
                    "license": licence,
                    "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                    "integrity": urls.get(url),
                }
            )
    manifest = {"great_expectations": great_expectations.__version__, "assets": entries}
    (TARGET / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    rows = sorted(
        {(e["package"], e["version"], e["license"], folder(e["package"], e["version"])) for e in entries}
    )
    readme = [
        "# Vendored assets of the Great Expectations Data Docs",
        "",
        f"The files great_expectations {great_expectations.__version__}'s Data Docs templates load from CDNs,",
        "fetched from the npm registry by `tools/vendor_data_docs_assets.py` (which also wrote this file and",
        "`manifest.json`: each CDN URL, the local file that replaces it and its sha256). `edw docs` copies this",
        "folder to `data/docs/validation/static/vendor/` and points every page at those copies, so the site",
        "opens from files with no network. Re-run the script after upgrading great_expectations.",
        "",
        "| package (npm) | version | licence | folder |",
        "|---|---|---|---|",
        *[f"| {p} | {v} | {lic} | `{d}/` (licence: `{d}/LICENSE*`) |" for p, v, lic, d in rows],
        "",
    ]
    (TARGET / "README.md").write_text("\n".join(readme), encoding="utf-8")
    print(f"vendored {len(entries)} URLs from {len(rows)} packages into {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
