"""One moderation queue over community submissions (stories domain) and visitors' notes
(pulse): one curator API above both (docs/pulse.md, "Moderation"). The text rules both
domains apply are below them, in holobazaar.visitor_text."""
