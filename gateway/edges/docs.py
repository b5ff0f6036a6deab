"""/openapi.json and /docs (Swagger UI from the swagger-ui-bundle package: no CDN needed), and
`/`, which points at them (unless a proto binds `/` itself)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>{title}</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


Page = Callable[[], web.StreamResponse]  # a fixed GET path's answer
_INDEX = orjson.dumps({"docs": "/docs", "openapi": "/openapi.json", "health": "/healthz",
                       "ready": "/readyz"})


def docs_pages(document: Mapping[str, Any]) -> dict[str, Page]:
    """/openapi.json (rendered once), /docs, and the Swagger UI files it loads."""
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    title = str(document.get("info", {}).get("title", "API")).replace("<", "&lt;")
    page = _PAGE.format(title=title).encode()
    pages: dict[str, Page] = {
        "/openapi.json": lambda: web.Response(body=body, content_type="application/json"),
        "/docs": lambda: web.Response(body=page, content_type="text/html"),
    }
    if "/" not in document.get("paths", {}):
        # A browser goes on to the docs; curl without -L reads where they are.
        pages["/"] = lambda: web.Response(status=302, body=_INDEX, content_type="application/json",
                                          headers={"Location": "/docs"})
    # Only the files the bundle has, listed once: no path from a request reaches the disk.
    for asset in Path(swagger_ui_path).iterdir():
        if asset.is_file():
            pages[f"/docs/static/{asset.name}"] = functools.partial(web.FileResponse, asset)
    return pages
