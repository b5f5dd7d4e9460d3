"""UI messages that are data rather than calls (section titles, reaction labels, stock
labels, the held-price notice): listed here so `pybabel extract` puts them in the
catalogue (babel.cfg; docs/client.md, Languages). The pages translate them where shown."""

from __future__ import annotations


def N_(message: str) -> str:
    return message


MESSAGES = (
    # the studio's sections (web/studio/shell.py SECTIONS)
    N_("Displays"), N_("Inventory"), N_("Holds & mismatches"), N_("Stories & recipes"),
    N_("Moderation"), N_("Shows"), N_("Schedule"), N_("Staff"), N_("My farm"),
    # the reaction bar (web/pages.py PULSE_KINDS)
    N_("♥ Love"), N_("✦ Wow"), N_("Hungry"), N_("Tell me more"),
    # stock and price (scenes/templates.py; web-client/src/page.js)
    N_("In stock"), N_("Low stock"), N_("Sold out"), N_("price at the stall"),
    N_("%(price)s (unverified)"), N_("each"), N_("per %(unit)s"),
)
