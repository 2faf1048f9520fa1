"""Made-up web sites, their URLs, and the boilerplate lines their pages carry.

Every domain is under ``.test``, reserved by RFC 2606 so it can never resolve.
The lines are chosen to trigger the cleaning rules a real pipeline applies:

- C4 (Raffel et al. 2020, §2.2; tfds ``c4_utils``) keeps only lines that end in
  terminal punctuation (``. ? ! "``) and have enough words, drops lines that
  mention "javascript", and drops lines containing a policy phrase ("terms of
  use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
  "use cookies"). Navigation menus, share bars and "Read more »" fail the
  punctuation rule; cookie banners and JavaScript notices fail the other two.
- Some lines pass C4 on purpose ("Copyright © 2019 Daily Facts. All rights
  reserved."): only cross-document line deduplication (Gopher, Rae et al. 2021;
  RefinedWeb, Penedo et al. 2023) removes them, so that step has work too.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Site:
    """A made-up web site: display name, domain, and its navigation menu line."""

    name: str
    domain: str
    nav: str


CONTENT_SITES = (
    Site("Example News", "example-news.test", "Home | News | World | Science | Contact"),
    Site("Daily Facts", "dailyfacts.test", "Home | About | Contact"),
    Site("Learn Hub", "learnhub.test", "Courses | Articles | About Us | Log in"),
    Site("Trivia Times", "trivia-times.test", "Home | Quizzes | Trivia | Shop | Contact"),
    Site("The Reference Desk", "refdesk.test", "Home | Topics | A-Z Index | Help"),
    Site("Knowledge Base Online", "kb-online.test", "Home | Browse | Random Article | Donate"),
)
FOREIGN_SITES = {
    "es": (
        Site("Noticias Ejemplo", "noticias-ejemplo.test", "Inicio | Noticias | Contacto"),
        Site("Saber Diario", "saberdiario.test", "Inicio | Temas | Acerca de"),
    ),
    "fr": (
        Site("Actu Exemple", "actu-exemple.test", "Accueil | Actualités | Contact"),
        Site("Le Savoir", "lesavoir.test", "Accueil | Thèmes | À propos"),
    ),
}
SPAM_SITES = (
    Site("Best Deals Online", "best-deals-online.test", "Deals | Coupons | Top 10 | Win"),
    Site("Cheap Offers", "cheap-offers.test", "HOT | NEW | SALE | FREE"),
    Site("Win Big Today", "win-big-today.test", "Casino | Bonus | Slots | Jackpot"),
)

# Headers fail C4's terminal-punctuation rule (a breadcrumb, a skip link, a menu).
_HEADERS = (
    "Skip to main content",
    "Menu Search Sign in Subscribe",
    "You are here: Home / {section}",
    "Home » {section} » {title}",
    "Posted by admin | {month} {day}, {year} | {n} comments",
)
# Footers: a mix of C4 line-rule triggers and lines that survive C4 (marked *).
_FOOTERS = (
    "This site uses cookies to improve your experience. By continuing to browse, "
    "you agree to our cookie policy.",
    "We use cookies to personalise content and ads. Accept all cookies?",
    "Please enable JavaScript to view the comments powered by Disqus.",
    "JavaScript is disabled in your browser. Some features may not work.",
    "Copyright © {year} {site}. All rights reserved.",  # * survives C4
    "Like this article? Share it with your friends!",  # * survives C4
    "Share on Facebook Twitter Pinterest Email",
    "Read more »",
    "Terms of Use | Privacy Policy | Sitemap",
    "Subscribe to our newsletter",
    "Tags: {section}, {slug}, facts",
    "Related posts",
    "Leave a comment",
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def slugify(text: str, max_len: int = 60) -> str:
    """A URL path segment: ASCII, lower case, words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "page"


def page_url(rng: random.Random, site: Site, topic: str, title: str) -> str:
    """A plausible article URL on ``site``: sometimes dated, sometimes by section."""
    slug = slugify(title)
    if rng.random() < 0.5:
        return f"https://{site.domain}/{rng.randint(2012, 2023)}/{rng.randint(1, 12):02d}/{slug}"
    return f"https://{site.domain}/{slugify(topic, 30)}/{slug}"


def copy_url(rng: random.Random, url: str, sites: tuple[Site, ...]) -> str:
    """The URL a copy of ``url`` lives at: a mirror site, a print view or a tracking query."""
    slug = url.rstrip("/").rsplit("/", 1)[-1]
    r = rng.random()
    if r < 0.5:
        return f"https://{rng.choice(sites).domain}/mirror/{slug}"
    if r < 0.75:
        return f"{url}/print"
    return f"{url}?utm_source={rng.choice(('twitter', 'feed', 'newsletter'))}"


def boilerplate_lines(
    rng: random.Random, site: Site, topic: str, title: str
) -> tuple[list[str], list[str]]:
    """Header and footer lines for one page of ``site``: the menu, then 0-2 more; 1-4 footers."""
    fields = {
        "section": topic,
        "title": title,
        "slug": slugify(title),
        "site": site.name,
        "year": rng.randint(2012, 2023),
        "month": rng.choice(_MONTHS),
        "day": rng.randint(1, 28),
        "n": rng.randint(0, 40),
    }
    header = [site.nav, *rng.sample(_HEADERS, rng.randint(0, 2))]
    footer = rng.sample(_FOOTERS, rng.randint(1, 4))
    return [h.format(**fields) for h in header], [f.format(**fields) for f in footer]
