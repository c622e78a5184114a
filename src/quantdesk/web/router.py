"""The dashboard's routes: the page shells and their static files.

The shells hold no data and no secret, so they are public; what a page shows comes from
the API, which checks the session on every call.  Static files are served from this
package only, by an allow-list of suffixes, and revalidated by ETag on each load (no
stale script after an upgrade).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from quantdesk.platform.exceptions import NotFound
from quantdesk.web.pages import HOME, PAGES, PAGES_BY_SLUG

STATIC_PREFIX = "/web/static"
_STATIC_ROOT = Path(str(resources.files("quantdesk.web") / "static")).resolve()
_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_STATIC_CACHE = {"Cache-Control": "no-cache"}

_templates = Environment(
    loader=PackageLoader("quantdesk.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse(HOME.path, status_code=303)


@router.get("/web/static/{path:path}")
async def static_file(path: str) -> FileResponse:
    file = (_STATIC_ROOT / path).resolve()
    media_type = _MEDIA_TYPES.get(file.suffix)
    if media_type is None or not file.is_relative_to(_STATIC_ROOT) or not file.is_file():
        raise NotFound("no such file")
    return FileResponse(file, media_type=media_type, headers=_STATIC_CACHE)


def _page_route(slug: str) -> None:
    page = PAGES_BY_SLUG[slug]
    template = _templates.get_template(f"{slug}.html")

    async def render() -> HTMLResponse:
        html = template.render(page=page, pages=PAGES, static=STATIC_PREFIX)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    render.__name__ = f"page_{slug}"
    router.add_api_route(page.path, render, methods=["GET"], response_class=HTMLResponse)


for _page in PAGES:
    _page_route(_page.slug)
