"""The dashboard's pages, in the order of the navigation bar: one place to add a page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    slug: str  # the template, the module under static/js/pages/, the URL path
    title: str
    in_nav: bool = True
    admin_only: bool = False

    @property
    def path(self) -> str:
        return f"/{self.slug}"


PAGES: tuple[Page, ...] = (
    Page("markets", "Markets"),
    Page("chart", "Chart"),
    Page("chain", "Option chain"),
    Page("strategy", "Strategy builder"),
    Page("trading", "Paper trading"),
    Page("portfolios", "Portfolios"),
    Page("risk", "Risk"),
    Page("account", "Account"),
    Page("admin", "Admin", admin_only=True),
    Page("login", "Sign in", in_nav=False),
)
PAGES_BY_SLUG = {page.slug: page for page in PAGES}
HOME = PAGES_BY_SLUG["markets"]
