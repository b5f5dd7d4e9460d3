"""One moderation queue over community submissions (stories domain) and visitors' notes
(pulse): shared text rules and one curator API (docs/pulse.md, "Moderation")."""
