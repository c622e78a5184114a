"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with their assets by quantdesk.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (jsDelivr), Google Fonts and a
favicon from fastapi.tiangolo.com, and start Swagger UI with an inline script: without
internet they were blank, and their Content-Security-Policy had to allow those hosts and
``'unsafe-inline'`` scripts.  Here the bundles come from the ``fastapi-offline`` package
(installed from PyPI with quantdesk, so their version is pinned by the install, not by a
CDN at run time), the start-up script is a file of ours, and the pages' policy allows
scripts from ``'self'`` only (``DOCS_CSP`` in ``security/http.py``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from quantdesk.platform.exceptions import NotFound

ASSETS_PREFIX = "/docs/assets"

# Swagger UI's options as FastAPI sets them, in a script file: an inline one would need
# 'unsafe-inline' in the policy.
SWAGGER_INIT_JS = """\
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

SWAGGER_HTML = f"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quantdesk - Swagger UI</title>
<link rel="icon" href="{ASSETS_PREFIX}/favicon.png">
<link rel="stylesheet" href="{ASSETS_PREFIX}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PREFIX}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PREFIX}/swagger-init.js"></script>
</body>
</html>
"""

REDOC_HTML = f"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quantdesk - ReDoc</title>
<link rel="icon" href="{ASSETS_PREFIX}/favicon.png">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_PREFIX}/redoc.standalone.js"></script>
</body>
</html>
"""

# The vendored files by name; nothing else under the directory is served.
_VENDORED = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# An hour in the browser: the files change only with an upgrade of the package.
_ASSET_CACHE = {"Cache-Control": "public, max-age=3600"}

router = APIRouter(include_in_schema=False)


def _vendored_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_HTML)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_HTML)


@router.get(ASSETS_PREFIX + "/{name}")
async def docs_asset(name: str) -> Response:
    if name == "swagger-init.js":
        return Response(SWAGGER_INIT_JS, media_type="text/javascript", headers=_ASSET_CACHE)
    media_type = _VENDORED.get(name)
    if media_type is None:
        raise NotFound(f"no documentation asset {name!r}")
    return FileResponse(_vendored_dir() / name, media_type=media_type, headers=_ASSET_CACHE)
