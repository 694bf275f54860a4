"""Turns a Superset export (the ZIP of `superset export-dashboards` or of the UI's Export) into the
files of bi/superset/assets: `scripts/superset export` runs it. Only what ties a file to one
Superset instance or one warehouse is changed, so the files import anywhere:

- the database's `sqlalchemy_uri` (exported with a masked password, but the host, port, user and
  database of the machine) becomes the `${WAREHOUSE_URL}` placeholder of `scripts/superset import`;
- a chart's `query_context` names its dataset by the dataset's uuid instead of this instance's
  integer id, and `params` lose `datasource` / `slice_id` (instance ids; the importer sets them);
- a dashboard's `position` numbers its charts 1, 2, … (`chartId`, an instance id the importer
  replaces); a virtual dataset says `source_db_engine: postgresql` (the export drops it);
- files are named after their object (`charts/hourly_close_price.yaml`, not `…_12.yaml`),
  long strings (SQL, query contexts) are YAML block scalars, and each kind gets its header comment.

    python normalize_export.py EXPORT.zip ASSETS_DIR     (ASSETS_DIR is replaced)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import yaml

HEADERS = {
    "databases": "# The warehouse connection. scripts/superset import writes WAREHOUSE_URL in place of the placeholder\n"
                 "# (in a private temporary copy); the URL with its password is never committed.\n",
    "datasets": "# A Superset dataset over the warehouse (warehouse/migrations, docs/DATA_MODEL.md). Edit in Superset and\n"
                "# re-export, or by hand; docs/BI.md.\n",
    "charts": "# A Superset chart. `query_context` is the data query of GET /api/v1/chart/{id}/data/ (its datasource is\n"
              "# the dataset's uuid, so it holds on any Superset); `params` is what Explore and the dashboard use.\n",
    "dashboards": "# A Superset dashboard: `position` places the charts (by uuid) in rows of width 12.\n",
    "metadata": "# Superset's export format, version 1 (superset import-directory / POST /api/v1/assets/import/).\n",
}
INSTANCE_PARAMS = ("datasource", "slice_id")


class Literal(str):
    pass


yaml.SafeDumper.add_representer(
    Literal, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|"))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def dump(path: Path, doc: dict, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110))


def main(export: str, out: str) -> None:
    out_dir = Path(out)
    with zipfile.ZipFile(export) as bundle:
        docs = {}
        for name in bundle.namelist():
            if name.endswith(".yaml"):
                # Drop the export's top folder (dashboard_export_<timestamp>/).
                docs[name.split("/", 1)[1]] = yaml.safe_load(bundle.read(name))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for name, doc in sorted(docs.items()):
        kind = name.split("/", 1)[0] if "/" in name else "metadata"
        if kind == "metadata":
            # An export of dashboards says `type: Dashboard`; the files hold every kind of asset, for
            # POST /api/v1/assets/import/ as well as import-directory (which ignores the type).
            doc["type"] = "assets"
            dump(out_dir / "metadata.yaml", doc, HEADERS[kind])
        elif kind == "databases":
            doc["sqlalchemy_uri"] = "${WAREHOUSE_URL}"
            dump(out_dir / "databases" / f"{slug(doc['database_name'])}.yaml", doc, HEADERS[kind])
        elif kind == "datasets":
            if doc.get("sql"):
                doc["sql"] = Literal(doc["sql"].rstrip() + "\n")
                # The export leaves it out; without it the importer "transpiles" the SQL from a
                # generic dialect, rewriting PostgreSQL's own syntax.
                doc["source_db_engine"] = "postgresql"
            dump(out_dir / "datasets" / Path(name).parent.name.lower() / f"{slug(doc['table_name'])}.yaml",
                 doc, HEADERS[kind])
        elif kind == "charts":
            for key in INSTANCE_PARAMS:
                doc["params"].pop(key, None)
            if doc.get("query_context"):
                context = json.loads(doc["query_context"])
                context["datasource"] = {"id": doc["dataset_uuid"], "type": "table"}
                for key in INSTANCE_PARAMS:
                    context.get("form_data", {}).pop(key, None)
                doc["query_context"] = Literal(json.dumps(context, indent=2) + "\n")
            dump(out_dir / "charts" / f"{slug(doc['slice_name'])}.yaml", doc, HEADERS[kind])
        elif kind == "dashboards":
            # chartId is this instance's chart id (the importer maps it by uuid): numbered in
            # order instead, so a re-export does not churn.
            charts = [item for item in doc["position"].values()
                      if isinstance(item, dict) and item.get("type") == "CHART"]
            for number, item in enumerate(charts, 1):
                item["meta"]["chartId"] = number
            dump(out_dir / "dashboards" / f"{slug(doc['dashboard_title'])}.yaml", doc, HEADERS[kind])
    print(f"normalize_export: wrote {sum(1 for _ in out_dir.rglob('*.yaml'))} files to {out_dir}")


if __name__ == "__main__":
    main(*sys.argv[1:])
